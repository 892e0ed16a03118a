//! Turning keys and values into bytes and back, as the Java client's
//! `Serializer` / `Deserializer` do. Records themselves carry bytes; these
//! are the conversions, kept apart so a producer or consumer is never tied
//! to one format.
//!
//! ```
//! use kafka_client::serializer::{Deserializer, I64Serde, Serializer, StringSerde};
//!
//! let bytes = StringSerde.serialize("orders", "customer-7").unwrap();
//! assert_eq!(StringSerde.deserialize("orders", &bytes).unwrap(), "customer-7");
//! let total = I64Serde.serialize("orders", &42).unwrap();
//! assert_eq!(&total[..], &42i64.to_be_bytes());
//! ```

use bytes::Bytes;

use crate::{Error, Result};

/// Converts a `T` into the bytes of a key or value.
pub trait Serializer<T: ?Sized> {
    /// The bytes for `data` sent to `topic`.
    fn serialize(&self, topic: &str, data: &T) -> Result<Bytes>;
}

/// Converts the bytes of a key or value into a `T`.
pub trait Deserializer<T> {
    /// The value `data` (read from `topic`) encodes.
    fn deserialize(&self, topic: &str, data: &Bytes) -> Result<T>;
}

fn malformed(topic: &str, what: &str, reason: impl std::fmt::Display) -> Error {
    Error::Protocol(format!(
        "cannot deserialize {what} from topic `{topic}`: {reason}"
    ))
}

/// UTF-8 strings (Java's `StringSerializer`/`StringDeserializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serializer<str> for StringSerde {
    fn serialize(&self, _topic: &str, data: &str) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(data.as_bytes()))
    }
}

impl Serializer<String> for StringSerde {
    fn serialize(&self, _topic: &str, data: &String) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(data.as_bytes()))
    }
}

impl Deserializer<String> for StringSerde {
    fn deserialize(&self, topic: &str, data: &Bytes) -> Result<String> {
        std::str::from_utf8(data)
            .map(str::to_owned)
            .map_err(|e| malformed(topic, "a string", e))
    }
}

/// Raw bytes (Java's `ByteArraySerializer`); `Bytes` pass through without a copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serializer<[u8]> for BytesSerde {
    fn serialize(&self, _topic: &str, data: &[u8]) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(data))
    }
}

impl Serializer<Vec<u8>> for BytesSerde {
    fn serialize(&self, _topic: &str, data: &Vec<u8>) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(data))
    }
}

impl Serializer<Bytes> for BytesSerde {
    fn serialize(&self, _topic: &str, data: &Bytes) -> Result<Bytes> {
        Ok(data.clone())
    }
}

impl Deserializer<Bytes> for BytesSerde {
    fn deserialize(&self, _topic: &str, data: &Bytes) -> Result<Bytes> {
        Ok(data.clone())
    }
}

impl Deserializer<Vec<u8>> for BytesSerde {
    fn deserialize(&self, _topic: &str, data: &Bytes) -> Result<Vec<u8>> {
        Ok(data.to_vec())
    }
}

macro_rules! integer_serde {
    ($name:ident, $ty:ty, $java:literal) => {
        #[doc = concat!("Big-endian `", stringify!($ty), "` (Java's `", $java, "`).")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serializer<$ty> for $name {
            fn serialize(&self, _topic: &str, data: &$ty) -> Result<Bytes> {
                Ok(Bytes::copy_from_slice(&data.to_be_bytes()))
            }
        }

        impl Deserializer<$ty> for $name {
            fn deserialize(&self, topic: &str, data: &Bytes) -> Result<$ty> {
                let raw: [u8; std::mem::size_of::<$ty>()] = data[..].try_into().map_err(|_| {
                    malformed(
                        topic,
                        stringify!($ty),
                        format!(
                            "{} bytes, expected {}",
                            data.len(),
                            std::mem::size_of::<$ty>()
                        ),
                    )
                })?;
                Ok(<$ty>::from_be_bytes(raw))
            }
        }
    };
}

integer_serde!(I32Serde, i32, "IntegerSerializer");
integer_serde!(I64Serde, i64, "LongSerializer");

/// JSON through serde (feature `serde_json`).
#[cfg(feature = "serde_json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSerde;

#[cfg(feature = "serde_json")]
impl<T: serde::Serialize> Serializer<T> for JsonSerde {
    fn serialize(&self, topic: &str, data: &T) -> Result<Bytes> {
        serde_json::to_vec(data)
            .map(Bytes::from)
            .map_err(|e| Error::Protocol(format!("cannot serialize JSON for topic `{topic}`: {e}")))
    }
}

#[cfg(feature = "serde_json")]
impl<T: serde::de::DeserializeOwned> Deserializer<T> for JsonSerde {
    fn deserialize(&self, topic: &str, data: &Bytes) -> Result<T> {
        serde_json::from_slice(data).map_err(|e| malformed(topic, "JSON", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_invalid_utf8_is_an_error() {
        let bytes = StringSerde.serialize("t", "héllo").unwrap();
        let back: String = StringSerde.deserialize("t", &bytes).unwrap();
        assert_eq!(back, "héllo");
        let owned = StringSerde.serialize("t", &String::from("x")).unwrap();
        assert_eq!(&owned[..], b"x");
        let bad: Result<String> = StringSerde.deserialize("t", &Bytes::from_static(&[0xff, 0xfe]));
        assert!(bad.unwrap_err().to_string().contains("topic `t`"));
    }

    #[test]
    fn bytes_pass_through_without_a_copy() {
        let original = Bytes::from_static(b"payload");
        let out = BytesSerde.serialize("t", &original).unwrap();
        assert_eq!(out.as_ptr(), original.as_ptr());
        assert_eq!(&BytesSerde.serialize("t", &b"v"[..]).unwrap()[..], b"v");
        assert_eq!(
            &BytesSerde.serialize("t", &vec![1u8, 2]).unwrap()[..],
            &[1, 2]
        );
        let back: Vec<u8> = BytesSerde.deserialize("t", &out).unwrap();
        assert_eq!(back, b"payload");
    }

    #[test]
    fn integers_are_big_endian_and_lengths_are_checked() {
        let bytes = I32Serde.serialize("t", &-2).unwrap();
        assert_eq!(&bytes[..], &[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(I32Serde.deserialize("t", &bytes).unwrap(), -2);
        assert_eq!(
            I64Serde
                .deserialize("t", &I64Serde.serialize("t", &7).unwrap())
                .unwrap(),
            7
        );
        assert!(I64Serde.deserialize("t", &bytes).is_err());
    }

    #[cfg(feature = "serde_json")]
    #[test]
    fn json_round_trips() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Order {
            id: u32,
        }
        let bytes = JsonSerde.serialize("t", &Order { id: 3 }).unwrap();
        assert_eq!(&bytes[..], br#"{"id":3}"#);
        let back: Order = JsonSerde.deserialize("t", &bytes).unwrap();
        assert_eq!(back, Order { id: 3 });
        let bad: Result<Order> = JsonSerde.deserialize("t", &Bytes::from_static(b"{"));
        assert!(bad.is_err());
    }
}
