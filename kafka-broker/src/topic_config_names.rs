//! The topic config names Kafka knows (its `TopicConfig` keys, Kafka 2.x to
//! 4.x, deprecated ones included so older tools still work), and the type
//! of each value. Kafka refuses any other name, and a value of the wrong
//! type, with INVALID_CONFIG; accepting them would let a typo
//! (`retention.msec`, `min.insync.replicas=two`) pass here and fail on a
//! real cluster. Bounds are checked only where Kafka's are plain; where in
//! doubt this accepts, so nothing Kafka takes is refused here.

const KNOWN: &[&str] = &[
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// Whether `name` is a topic config Kafka knows.
pub(crate) fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
}

/// What a config's value must be.
enum Kind {
    /// An integer (Java long or int) at least this.
    AtLeast(i64),
    /// An integer in this range.
    Between(i64, i64),
    /// `true` or `false`, in any case.
    Bool,
    /// A number in this range.
    Ratio,
    /// One of these.
    OneOf(&'static [&'static str]),
    /// Anything (lists of replicas, versions).
    Text,
}

fn kind(name: &str) -> Kind {
    match name {
        "compression.type" => {
            Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"])
        }
        "compression.gzip.level" => Kind::Between(-1, 9),
        "compression.lz4.level" => Kind::Between(1, 17),
        "compression.zstd.level" => Kind::Between(-131_072, 22),
        "message.timestamp.type" => Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        "min.cleanable.dirty.ratio" => Kind::Ratio,
        "min.insync.replicas" | "max.compaction.lag.ms" | "segment.ms" | "segment.bytes" => {
            Kind::AtLeast(1)
        }
        "retention.ms" | "retention.bytes" => Kind::AtLeast(-1),
        "local.retention.ms" | "local.retention.bytes" => Kind::AtLeast(-2),
        "delete.retention.ms"
        | "file.delete.delay.ms"
        | "flush.messages"
        | "flush.ms"
        | "index.interval.bytes"
        | "max.message.bytes"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.difference.max.ms"
        | "min.compaction.lag.ms"
        | "segment.index.bytes"
        | "segment.jitter.ms" => Kind::AtLeast(0),
        "message.downconversion.enable"
        | "preallocate"
        | "remote.storage.enable"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable"
        | "unclean.leader.election.enable" => Kind::Bool,
        _ => Kind::Text,
    }
}

/// Why `value` is not a valid value of the known config `name`, if it is not.
pub(crate) fn check_value(name: &str, value: &str) -> Result<(), String> {
    let value = value.trim();
    let integer = || {
        value
            .parse::<i64>()
            .map_err(|_| "not an integer".to_owned())
    };
    match kind(name) {
        Kind::AtLeast(min) => {
            let n = integer()?;
            if n < min {
                return Err(format!("must be at least {min}"));
            }
        }
        Kind::Between(min, max) => {
            let n = integer()?;
            if n < min || n > max {
                return Err(format!("must be between {min} and {max}"));
            }
        }
        Kind::Bool => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                return Err("not true or false".into());
            }
        }
        Kind::Ratio => {
            let r: f64 = value.parse().map_err(|_| "not a number".to_owned())?;
            if !(0.0..=1.0).contains(&r) {
                return Err("must be between 0 and 1".into());
            }
        }
        Kind::OneOf(allowed) => {
            if !allowed.contains(&value) {
                return Err(format!("not one of {}", allowed.join(", ")));
            }
        }
        Kind::Text => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_by_the_configs_type() {
        assert!(check_value("retention.ms", "-1").is_ok());
        assert!(check_value("retention.ms", "a week").is_err());
        assert!(check_value("min.insync.replicas", "0").is_err());
        assert!(check_value("min.insync.replicas", "2").is_ok());
        assert!(check_value("preallocate", "TRUE").is_ok());
        assert!(check_value("preallocate", "yes").is_err());
        assert!(check_value("compression.type", "zstd").is_ok());
        assert!(check_value("compression.type", "brotli").is_err());
        assert!(check_value("compression.gzip.level", "10").is_err());
        assert!(check_value("min.cleanable.dirty.ratio", "0.5").is_ok());
        assert!(check_value("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(check_value("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(check_value("leader.replication.throttled.replicas", "0:1,1:2").is_ok());
        for name in KNOWN {
            // Every known name has a kind that takes some value.
            let sample = match kind(name) {
                Kind::AtLeast(min) => min.max(1).to_string(),
                Kind::Between(min, _) => min.to_string(),
                Kind::Bool => "false".into(),
                Kind::Ratio => "0.5".into(),
                Kind::OneOf(allowed) => allowed[0].into(),
                Kind::Text => "x".into(),
            };
            assert!(check_value(name, &sample).is_ok(), "{name}={sample}");
        }
    }
}
