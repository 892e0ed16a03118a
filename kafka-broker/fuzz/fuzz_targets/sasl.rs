//! One connection's SASL exchange (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
//! after SaslHandshake v0 or v1) driven by arbitrary client tokens: the
//! broker answers or closes; it never panics and never lets a client in
//! without the password.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kafka_broker::security::fuzzing::sasl_exchange(data);
});
