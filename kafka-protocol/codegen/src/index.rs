//! Emits `messages/mod.rs`: the module list, the `ApiKey` enum with each
//! API's versions, and the request/response enums that dispatch on it.

use std::fmt::Write as _;

use crate::emit::{HEADER_LINE, module_name};
use crate::schema::{Kind, Message};

struct Api<'a> {
    key: i16,
    name: String,
    request: &'a Message,
    response: &'a Message,
}

fn apis(messages: &[Message]) -> Result<Vec<Api<'_>>, String> {
    let mut apis = Vec::new();
    for request in messages.iter().filter(|m| m.kind == Kind::Request) {
        let key = request
            .api_key
            .ok_or_else(|| format!("{} has no apiKey", request.name))?;
        let response = messages
            .iter()
            .find(|m| m.kind == Kind::Response && m.api_key == Some(key))
            .ok_or_else(|| format!("no response for API key {key}"))?;
        let name = request
            .name
            .strip_suffix("Request")
            .ok_or_else(|| format!("request {} does not end in Request", request.name))?
            .to_string();
        if request.valid != response.valid {
            return Err(format!("{name}: request and response versions differ"));
        }
        apis.push(Api {
            key,
            name,
            request,
            response,
        });
    }
    apis.sort_by_key(|api| api.key);
    Ok(apis)
}

pub fn mod_file(messages: &[Message]) -> Result<String, String> {
    let apis = apis(messages)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "//! Every Kafka request, response, header and data schema, all versions.\n{HEADER_LINE}\n"
    );
    out.push_str("#![allow(clippy::all, clippy::pedantic)]\n\n");
    out.push_str("use crate::message::{Decode, Encode, VersionRange};\nuse crate::{DecodeError, EncodeError};\n\n");
    let mut sorted: Vec<&Message> = messages.iter().collect();
    sorted.sort_by(|a, b| a.file_stem.cmp(&b.file_stem));
    for message in &sorted {
        let _ = writeln!(out, "#[rustfmt::skip]\npub mod {};", module_name(message));
    }
    out.push('\n');
    for message in &sorted {
        let _ = writeln!(out, "pub use {}::{};", module_name(message), message.name);
    }
    out.push('\n');

    out.push_str("/// Calls `$callback!(Type)` for every top-level schema type (tests use it to\n/// cover every message without a hand-kept list).\n#[macro_export]\nmacro_rules! for_each_message {\n    ($callback:ident) => {\n");
    for message in &sorted {
        let _ = writeln!(
            out,
            "        $callback!($crate::messages::{});",
            message.name
        );
    }
    out.push_str("    };\n}\n\n");

    // ApiKey.
    out.push_str("/// Every API of the protocol, by its key.\n");
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[repr(i16)]\npub enum ApiKey {\n");
    for api in &apis {
        let _ = writeln!(
            out,
            "    /// `{}` (key {}).\n    {} = {},",
            api.name, api.key, api.name, api.key
        );
    }
    out.push_str("}\n\n");
    out.push_str("impl ApiKey {\n");
    out.push_str("    /// Every API, in key order.\n    pub const ALL: &'static [ApiKey] = &[\n");
    for api in &apis {
        let _ = writeln!(out, "        ApiKey::{},", api.name);
    }
    out.push_str("    ];\n\n");
    let arms = |f: &dyn Fn(&Api) -> String| -> String {
        apis.iter()
            .map(|api| format!("            ApiKey::{} => {},\n", api.name, f(api)))
            .collect()
    };
    let _ = write!(
        out,
        "    /// The API with this key, if the protocol has one.\n    pub fn from_i16(key: i16) -> Option<ApiKey> {{\n        match key {{\n{}            _ => None,\n        }}\n    }}\n\n",
        apis.iter()
            .map(|a| format!("            {} => Some(ApiKey::{}),\n", a.key, a.name))
            .collect::<String>()
    );
    let _ = write!(
        out,
        "    /// The API's name, as Kafka spells it.\n    pub fn name(self) -> &'static str {{\n        match self {{\n{}        }}\n    }}\n\n",
        arms(&|a| format!("{:?}", a.name))
    );
    let _ = write!(
        out,
        "    /// The versions this codec reads and writes (the schemas' `validVersions`).\n    pub fn valid_versions(self) -> VersionRange {{\n        match self {{\n{}        }}\n    }}\n\n",
        arms(&|a| format!(
            "VersionRange {{ min: {}, max: {} }}",
            a.request.valid.min, a.request.valid.max
        ))
    );
    let flexible_since = |m: &Message| {
        let f = m.flexible.intersect(m.valid);
        if f.is_empty() {
            "None".to_string()
        } else {
            format!("Some({})", f.min)
        }
    };
    let _ = write!(
        out,
        "    /// The first flexible (KIP-482) version of the request, if any.\n    pub fn request_flexible_since(self) -> Option<i16> {{\n        match self {{\n{}        }}\n    }}\n\n",
        arms(&|a| flexible_since(a.request))
    );
    let _ = write!(
        out,
        "    /// The first flexible (KIP-482) version of the response, if any.\n    pub fn response_flexible_since(self) -> Option<i16> {{\n        match self {{\n{}        }}\n    }}\n\n",
        arms(&|a| flexible_since(a.response))
    );
    let _ = write!(
        out,
        "    /// Whether the newest version is still marked unstable in the schema (brokers do not advertise it by default).\n    pub fn latest_version_unstable(self) -> bool {{\n        match self {{\n{}        }}\n    }}\n\n",
        arms(&|a| a.request.latest_version_unstable.to_string())
    );
    let _ = write!(
        out,
        "    /// The listeners that serve this API (`broker`, `controller`, `zkBroker`).\n    pub fn listeners(self) -> &'static [&'static str] {{\n        match self {{\n{}        }}\n    }}\n\n",
        arms(&|a| format!("&{:?}", a.request.listeners))
    );
    out.push_str("}\n\n");
    out.push_str("impl TryFrom<i16> for ApiKey {\n    type Error = DecodeError;\n\n    fn try_from(key: i16) -> Result<Self, DecodeError> {\n        ApiKey::from_i16(key).ok_or(DecodeError::UnknownApiKey(key))\n    }\n}\n\n");

    // Request and Response traits.
    for api in &apis {
        let _ = writeln!(
            out,
            "impl crate::message::Request for {} {{\n    const API_KEY: ApiKey = ApiKey::{};\n    type Response = {};\n}}\n\nimpl crate::message::Response for {} {{\n    const API_KEY: ApiKey = ApiKey::{};\n}}\n",
            api.request.name, api.name, api.response.name, api.response.name, api.name
        );
    }

    // Dispatch enums.
    for (kind, side) in [("Request", 0), ("Response", 1)] {
        let _ = writeln!(out, "/// Any {}, tagged by API.", kind.to_lowercase());
        out.push_str("#[derive(Debug, Clone, PartialEq)]\n");
        let _ = writeln!(out, "pub enum {kind}Kind {{");
        for api in &apis {
            let message = if side == 0 { api.request } else { api.response };
            let _ = writeln!(
                out,
                "    /// A `{}`.\n    {}({}),",
                message.name, api.name, message.name
            );
        }
        out.push_str("}\n\n");
        let _ = writeln!(out, "impl {kind}Kind {{");
        let _ = write!(
            out,
            "    /// The API this {} belongs to.\n    pub fn api_key(&self) -> ApiKey {{\n        match self {{\n{}        }}\n    }}\n\n",
            kind.to_lowercase(),
            apis.iter()
                .map(|a| format!(
                    "            {kind}Kind::{}(_) => ApiKey::{},\n",
                    a.name, a.name
                ))
                .collect::<String>()
        );
        let _ = write!(
            out,
            "    /// Decodes the body of a {} of API `key` at `version`.\n    pub fn decode(key: ApiKey, buf: &mut bytes::Bytes, version: i16) -> Result<Self, DecodeError> {{\n        Ok(match key {{\n{}        }})\n    }}\n\n",
            kind.to_lowercase(),
            apis.iter()
                .map(|a| {
                    let m = if side == 0 { a.request } else { a.response };
                    format!(
                        "            ApiKey::{} => {kind}Kind::{}({}::decode(buf, version)?),\n",
                        a.name, a.name, m.name
                    )
                })
                .collect::<String>()
        );
        let _ = write!(
            out,
            "    /// Encodes the body at `version`.\n    pub fn encode(&self, buf: &mut bytes::BytesMut, version: i16) -> Result<(), EncodeError> {{\n        match self {{\n{}        }}\n    }}\n",
            apis.iter()
                .map(|a| format!(
                    "            {kind}Kind::{}(m) => m.encode(buf, version),\n",
                    a.name
                ))
                .collect::<String>()
        );
        out.push_str("}\n\n");
    }
    Ok(out.trim_end().to_string() + "\n")
}
