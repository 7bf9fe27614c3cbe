import Testing

/// Every system test starts the whole system (six processes on its own vhost and database); on two
/// cores, many at once starve each other into timeouts. So they run one at a time, beside the
/// lighter suites of the other targets.
@Suite(.serialized) enum SystemSuites {}
