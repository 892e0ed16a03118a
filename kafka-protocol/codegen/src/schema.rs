//! The JSON schema files, parsed. They carry `//` comments, which are
//! stripped before parsing.

use serde::Deserialize;
use serde_json::Value;

use crate::versions::Versions;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMessage {
    pub api_key: Option<i16>,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub valid_versions: String,
    #[serde(default)]
    pub flexible_versions: Option<String>,
    #[serde(default)]
    pub fields: Vec<RawField>,
    #[serde(default)]
    pub common_structs: Vec<RawStruct>,
    #[serde(default)]
    pub listeners: Vec<String>,
    #[serde(default)]
    pub latest_version_unstable: bool,
}

#[derive(Debug, Deserialize)]
pub struct RawStruct {
    pub name: String,
    pub fields: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawField {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub versions: Option<String>,
    #[serde(default)]
    pub nullable_versions: Option<String>,
    #[serde(default)]
    pub tagged_versions: Option<String>,
    #[serde(default)]
    pub flexible_versions: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    pub tag: Option<u32>,
    #[serde(default)]
    pub ignorable: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub about: Option<String>,
    #[serde(default)]
    pub entity_type: Option<String>,
    #[serde(default)]
    pub fields: Option<Vec<RawField>>,
}

/// Which kind of schema a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

/// A schema file, parsed and checked.
#[derive(Debug)]
pub struct Message {
    pub file_stem: String,
    pub kind: Kind,
    pub api_key: Option<i16>,
    pub name: String,
    pub valid: Versions,
    pub flexible: Versions,
    pub fields: Vec<RawField>,
    pub common_structs: Vec<RawStruct>,
    pub listeners: Vec<String>,
    pub latest_version_unstable: bool,
}

/// Removes `//` comments that are not inside a string.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else if b == b'"' {
                in_string = true;
            } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
                cut = i;
                break;
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

pub fn parse(file_stem: &str, text: &str) -> Result<Message, String> {
    // Through `Value` first: a few upstream schemas repeat a key in one
    // object, which Jackson (and `Value`) accept, last one winning.
    let value: Value =
        serde_json::from_str(&strip_comments(text)).map_err(|e| format!("{file_stem}: {e}"))?;
    let raw: RawMessage = serde_json::from_value(value).map_err(|e| format!("{file_stem}: {e}"))?;
    let kind = match raw.kind.as_str() {
        "request" => Kind::Request,
        "response" => Kind::Response,
        "header" => Kind::Header,
        "data" => Kind::Data,
        other => return Err(format!("{file_stem}: unknown message type {other:?}")),
    };
    Ok(Message {
        file_stem: file_stem.to_string(),
        kind,
        api_key: raw.api_key,
        name: raw.name,
        valid: Versions::parse(&raw.valid_versions)?,
        flexible: Versions::parse(raw.flexible_versions.as_deref().unwrap_or("none"))?,
        fields: raw.fields,
        common_structs: raw.common_structs,
        listeners: raw.listeners,
        latest_version_unstable: raw.latest_version_unstable,
    })
}

/// Some schemas write the tag as a string ("0"), others as a number.
fn number_or_string<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<u32>, D::Error> {
    match Option::<Value>::deserialize(de)? {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("tag out of range")),
        Some(Value::String(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!("bad tag {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_but_not_inside_strings() {
        let text = "{ // a comment\n \"about\": \"see http://x\" }\n// tail";
        let stripped = strip_comments(text);
        assert!(stripped.contains("http://x"));
        assert!(!stripped.contains("a comment"));
        assert!(!stripped.contains("tail"));
    }
}
