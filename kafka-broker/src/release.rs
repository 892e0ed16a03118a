//! Which Apache Kafka release the broker imitates in ApiVersions
//! (`kafka.version`, `--kafka-version`): the API versions that release's
//! brokers offer, so a client's tests meet what users run (2.8 and 3.x on
//! managed services, 4.0 new). The tables are generated from each release's
//! own schemas (`releases.rs`); the broker offers the part of a table it
//! implements.

use std::fmt;
use std::str::FromStr;

use kafka_protocol::{ApiKey, VersionRange};

/// An Apache Kafka release whose API versions the broker can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KafkaRelease {
    /// Kafka 2.8 (ZooKeeper mode): Fetch up to v12, Metadata up to v11.
    V2_8,
    /// Kafka 3.5 (ZooKeeper mode): Fetch up to v15.
    V3_5,
    /// Kafka 3.9 (KRaft): Fetch up to v17, Produce up to v11.
    V3_9,
    /// Kafka 4.0 (KRaft): the first without ZooKeeper and the pre-2.1
    /// protocol versions (KIP-896).
    V4_0,
}

impl KafkaRelease {
    /// Every release, oldest first.
    pub const ALL: [KafkaRelease; 4] = [Self::V2_8, Self::V3_5, Self::V3_9, Self::V4_0];

    /// Its name, as `kafka.version` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::V2_8 => "2.8",
            Self::V3_5 => "3.5",
            Self::V3_9 => "3.9",
            Self::V4_0 => "4.0",
        }
    }

    fn table(self) -> &'static [(i16, i16, i16)] {
        match self {
            Self::V2_8 => crate::releases::KAFKA_2_8,
            Self::V3_5 => crate::releases::KAFKA_3_5,
            Self::V3_9 => crate::releases::KAFKA_3_9,
            Self::V4_0 => crate::releases::KAFKA_4_0,
        }
    }

    /// The versions of `api` brokers of this release offer, if any.
    pub fn versions(self, api: ApiKey) -> Option<VersionRange> {
        self.table()
            .iter()
            .find(|(key, _, _)| *key == api as i16)
            .map(|&(_, min, max)| VersionRange { min, max })
    }
}

impl fmt::Display for KafkaRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KafkaRelease {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|r| r.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|r| r.name()).collect();
                format!("`{s}` is not one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_tables_differ_where_the_releases_do() {
        for release in KafkaRelease::ALL {
            assert_eq!(release.name().parse::<KafkaRelease>(), Ok(release));
        }
        assert!("5.0".parse::<KafkaRelease>().is_err());
        let fetch = |r: KafkaRelease| r.versions(ApiKey::Fetch).map(|v| v.max);
        assert_eq!(fetch(KafkaRelease::V2_8), Some(12));
        assert_eq!(fetch(KafkaRelease::V3_5), Some(15));
        assert_eq!(fetch(KafkaRelease::V4_0), Some(17));
        // KIP-896: Kafka 4.0 dropped Produce v0-2.
        assert_eq!(
            KafkaRelease::V4_0.versions(ApiKey::Produce).map(|v| v.min),
            Some(3)
        );
        // DescribeCluster came with 2.8 (KIP-700); ConsumerGroupHeartbeat
        // with 4.0 as generally available.
        assert!(
            KafkaRelease::V2_8
                .versions(ApiKey::DescribeCluster)
                .is_some()
        );
        assert!(
            KafkaRelease::V2_8
                .versions(ApiKey::ConsumerGroupHeartbeat)
                .is_none()
        );
    }
}
