import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One hiredis context: a blocking TCP connection to Redis.
///
/// Every method blocks, so it is only ever called from an `NIOThreadPool` thread, and by one thread
/// at a time: the pool hands a connection to exactly one command and takes it back afterwards
/// (that is what makes the `@unchecked Sendable` sound). Freeing it (`deinit`) only closes the socket,
/// which does not block.
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>
    /// The pool generation this connection was opened in; older generations are dropped on return.
    let generation: Int

    private init(context: UnsafeMutablePointer<redisContext>, generation: Int) {
        self.context = context
        self.generation = generation
    }

    deinit { redisFree(context) }

    /// Connects, applies the command timeout, and authenticates / selects the database.
    static func connect(_ configuration: RedisConfiguration, generation: Int) throws(RedisError) -> RedisConnection {
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port),
                                                    makeTimeval(configuration.connectTimeout)) else {
            throw RedisError(code: .connectionFailed, message: "hiredis could not allocate a context")
        }
        if context.pointee.err != 0 {
            let error = Self.error(from: context, errno: errno, command: nil, connecting: true)
            redisFree(context)
            throw error
        }
        let connection = RedisConnection(context: context, generation: generation)
        // AUTH and SELECT run under the connect timeout; the command timeout applies afterwards.
        if let password = configuration.password {
            var auth = ["AUTH"]
            if let username = configuration.username { auth.append(username) }
            auth.append(password)
            _ = try connection.execute(auth.map { Array($0.utf8) })
        }
        if configuration.database != 0 {
            _ = try connection.execute([Array("SELECT".utf8), Array(String(configuration.database).utf8)])
        }
        guard redisSetTimeout(context, makeTimeval(configuration.commandTimeout)) == REDIS_OK else {
            throw RedisError(code: .connectionFailed, message: "could not set the command timeout")
        }
        return connection
    }

    /// False when the server has closed this connection while it sat idle (restart, idle timeout):
    /// a non-blocking peek sees EOF or an error. Unread bytes would also mean the stream is out of step.
    var isAlive: Bool {
        var byte: UInt8 = 0
        let received = recv(context.pointee.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if received < 0 { return errno == EAGAIN || errno == EWOULDBLOCK }
        return false
    }

    /// Sends one command and waits for its reply. Error replies throw ``RedisError/Code/serverError``
    /// and leave the connection usable; any other error means this connection must be dropped.
    func execute(_ arguments: [[UInt8]]) throws(RedisError) -> RedisValue {
        let name = arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() }
        // One contiguous buffer plus offsets: binary-safe and one allocation. The trailing byte keeps
        // every pointer valid even for empty arguments.
        var buffer: [UInt8] = []
        buffer.reserveCapacity(arguments.reduce(1) { $0 + $1.count })
        var offsets: [Int] = []
        var lengths: [Int] = []
        for argument in arguments {
            offsets.append(buffer.count)
            lengths.append(argument.count)
            buffer.append(contentsOf: argument)
        }
        buffer.append(0)
        let raw: UnsafeMutableRawPointer? = buffer.withUnsafeBufferPointer { bytes in
            bytes.baseAddress!.withMemoryRebound(to: CChar.self, capacity: bytes.count) { base in
                var pointers: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
                return pointers.withUnsafeMutableBufferPointer { argv in
                    lengths.withUnsafeBufferPointer { argvlen in
                        redisCommandArgv(context, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
                    }
                }
            }
        }
        let savedErrno = errno
        guard let raw else {
            throw Self.error(from: context, errno: savedErrno, command: name, connecting: false)
        }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return try Self.value(of: reply, command: name)
    }

    private static func value(of reply: UnsafeMutablePointer<redisReply>, command: String?) throws(RedisError) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_INTEGER:
            return .integer(Int(r.integer))
        case REDIS_REPLY_STRING:
            return .bulk(bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            // Nested errors (inside EXEC arrays) are thrown too: callers never see a half-failed array.
            throw RedisError(code: .serverError, message: String(decoding: bytes(r.str, r.len), as: UTF8.self),
                             command: command)
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                guard let element = r.element[index] else { elements.append(.null); continue }
                elements.append(try value(of: element, command: command))
            }
            return .array(elements)
        default:
            throw RedisError(code: .protocolError, message: "unknown reply type \(r.type)", command: command)
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    /// Maps hiredis' context error to a ``RedisError``; a socket timeout shows up as EAGAIN.
    private static func error(from context: UnsafeMutablePointer<redisContext>, errno code: Int32,
                              command: String?, connecting: Bool) -> RedisError {
        let detail = withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let err = context.pointee.err
        if err == REDIS_ERR_IO && (code == EAGAIN || code == EWOULDBLOCK || code == ETIMEDOUT || code == EINPROGRESS) {
            return RedisError(code: .timeout, message: connecting ? "connect timed out: \(detail)" : "timed out: \(detail)",
                              command: command)
        }
        if err == REDIS_ERR_PROTOCOL {
            return RedisError(code: .protocolError, message: detail, command: command)
        }
        if err == REDIS_ERR_EOF {
            return RedisError(code: .connectionFailed, message: "the server closed the connection", command: command)
        }
        return RedisError(code: .connectionFailed, message: connecting ? "connect failed: \(detail)" : detail,
                          command: command)
    }
}

private func makeTimeval(_ duration: Duration) -> timeval {
    let (seconds, attoseconds) = duration.components
    var value = timeval()
    value.tv_sec = .init(truncatingIfNeeded: max(seconds, 0))
    value.tv_usec = .init(truncatingIfNeeded: max(attoseconds, 0) / 1_000_000_000_000)
    return value
}
