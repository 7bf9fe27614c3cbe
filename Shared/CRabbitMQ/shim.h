#ifndef CRABBITMQ_SHIM_H
#define CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_framing.h>
#include <sys/time.h>

/// `amqp_login` is variadic, which Swift cannot call: a plain wrapper for PLAIN auth.
static inline amqp_rpc_reply_t CRabbitMQ_login_plain(amqp_connection_state_t _Nonnull state,
                                                     const char * _Nonnull vhost,
                                                     int channel_max, int frame_max, int heartbeat,
                                                     const char * _Nonnull user,
                                                     const char * _Nonnull password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat,
                      AMQP_SASL_METHOD_PLAIN, user, password);
}

/// Like `CRabbitMQ_login_plain`, with client properties (e.g. `connection_name`, shown by the broker's tools).
static inline amqp_rpc_reply_t CRabbitMQ_login_plain_with_properties(
    amqp_connection_state_t _Nonnull state, const char * _Nonnull vhost,
    int channel_max, int frame_max, int heartbeat,
    const amqp_table_t * _Nonnull properties,
    const char * _Nonnull user, const char * _Nonnull password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

#endif
