//! The schemas resolved into what the emitter needs: Rust names and types,
//! version ranges, and every struct with the versions it can be encoded in.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::schema::{Message, RawField};
use crate::versions::Versions;

/// A field's wire type.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Bool,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    F64,
    Str,
    Uuid,
    Bytes,
    Records,
    Array(Box<Ty>),
    Struct(String),
}

impl Ty {
    pub fn parse(text: &str) -> Ty {
        if let Some(inner) = text.strip_prefix("[]") {
            return Ty::Array(Box::new(Ty::parse(inner)));
        }
        match text {
            "bool" => Ty::Bool,
            "int8" => Ty::I8,
            "int16" => Ty::I16,
            "uint16" => Ty::U16,
            "int32" => Ty::I32,
            "uint32" => Ty::U32,
            "int64" => Ty::I64,
            "float64" => Ty::F64,
            "string" => Ty::Str,
            "uuid" => Ty::Uuid,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            other => Ty::Struct(other.to_string()),
        }
    }

    /// Whether null can be represented on the wire for this type.
    pub fn can_be_null(&self) -> bool {
        matches!(
            self,
            Ty::Str | Ty::Bytes | Ty::Records | Ty::Array(_) | Ty::Struct(_)
        )
    }

    /// The Rust type of a non-null value.
    pub fn rust(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::I8 => "i8".into(),
            Ty::I16 => "i16".into(),
            Ty::U16 => "u16".into(),
            Ty::I32 => "i32".into(),
            Ty::U32 => "u32".into(),
            Ty::I64 => "i64".into(),
            Ty::F64 => "f64".into(),
            Ty::Str => "::std::string::String".into(),
            Ty::Uuid => "::uuid::Uuid".into(),
            Ty::Bytes | Ty::Records => "::bytes::Bytes".into(),
            Ty::Array(inner) => format!("::std::vec::Vec<{}>", inner.rust()),
            Ty::Struct(name) => name.clone(),
        }
    }
}

/// One field of a struct.
#[derive(Debug, Clone)]
pub struct Field {
    pub json_name: String,
    pub rust_name: String,
    pub ty: Ty,
    pub versions: Versions,
    pub nullable: Versions,
    pub tag: Option<u32>,
    pub flexible_override: Option<Versions>,
    pub ignorable: bool,
    pub default: Option<Value>,
    pub about: Option<String>,
    pub entity_type: Option<String>,
}

impl Field {
    /// Whether the Rust type is an `Option`.
    pub fn is_option(&self) -> bool {
        self.ty.can_be_null() && !self.nullable.is_empty()
    }

    pub fn rust_type(&self) -> String {
        if self.is_option() {
            format!("::std::option::Option<{}>", self.ty.rust())
        } else {
            self.ty.rust()
        }
    }

    /// Whether the schema gives this field a null default.
    pub fn defaults_to_null(&self) -> bool {
        matches!(&self.default, Some(Value::String(s)) if s == "null")
            || (self.ty == Ty::Records && self.is_option())
    }
}

/// A struct: the message itself, a nested struct or a common struct.
#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
    /// The versions in which this struct can be encoded (a hull of its uses).
    pub context: Versions,
    pub top_level: bool,
    pub about: Option<String>,
}

/// Converts a schema name (`KRaftVersion`, `ThrottleTimeMs`) to snake case.
pub fn snake_case(name: &str) -> String {
    let name = name.replace("KRaft", "Kraft");
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn rust_field_name(name: &str) -> String {
    let snake = snake_case(name);
    match snake.as_str() {
        "type" | "match" | "ref" | "move" | "fn" | "struct" | "enum" | "mod" | "use" | "where"
        | "loop" | "as" | "in" | "for" | "if" | "else" | "return" | "async" | "await" | "dyn"
        | "impl" | "trait" | "static" | "const" | "crate" | "super" | "box" | "yield" | "try"
        | "gen" => format!("r#{snake}"),
        _ => snake,
    }
}

fn resolve_field(message: &Message, raw: &RawField) -> Result<Field, String> {
    let versions = Versions::parse(
        raw.versions
            .as_deref()
            .ok_or_else(|| format!("{}: field {} has no versions", message.name, raw.name))?,
    )?;
    let tagged = match &raw.tagged_versions {
        Some(t) => Versions::parse(t)?,
        None => Versions::NONE,
    };
    if raw.tag.is_some() == tagged.is_empty() {
        return Err(format!(
            "{}: field {} has a tag without taggedVersions or the reverse",
            message.name, raw.name
        ));
    }
    if raw.tag.is_some() && tagged != versions {
        return Err(format!(
            "{}: field {} is tagged in only some of its versions",
            message.name, raw.name
        ));
    }
    Ok(Field {
        json_name: raw.name.clone(),
        rust_name: rust_field_name(&raw.name),
        ty: Ty::parse(&raw.ty),
        versions,
        nullable: match &raw.nullable_versions {
            Some(n) => Versions::parse(n)?,
            None => Versions::NONE,
        },
        tag: raw.tag,
        flexible_override: raw
            .flexible_versions
            .as_deref()
            .map(Versions::parse)
            .transpose()?,
        ignorable: raw.ignorable,
        default: raw.default.clone(),
        about: raw.about.clone(),
        entity_type: raw.entity_type.clone(),
    })
}

fn struct_name(ty: &Ty) -> Option<&str> {
    match ty {
        Ty::Struct(name) => Some(name),
        Ty::Array(inner) => struct_name(inner),
        _ => None,
    }
}

/// Every struct of a message, the message itself first, in definition order.
pub fn structs(message: &Message) -> Result<Vec<StructDef>, String> {
    // name -> (definition order, raw fields, about)
    let mut raw_defs: BTreeMap<String, (usize, &[RawField], Option<String>)> = BTreeMap::new();
    fn collect<'a>(
        fields: &'a [RawField],
        defs: &mut BTreeMap<String, (usize, &'a [RawField], Option<String>)>,
    ) -> Result<(), String> {
        for field in fields {
            if let (Some(name), Some(inner)) = (struct_name(&Ty::parse(&field.ty)), &field.fields) {
                let order = defs.len() + 1;
                if defs
                    .insert(name.to_string(), (order, inner, field.about.clone()))
                    .is_some()
                {
                    return Err(format!("struct {name} is defined twice"));
                }
                collect(inner, defs)?;
            }
        }
        Ok(())
    }
    collect(&message.fields, &mut raw_defs)?;
    for common in &message.common_structs {
        let order = raw_defs.len() + 1;
        if raw_defs
            .insert(common.name.clone(), (order, &common.fields, None))
            .is_some()
        {
            return Err(format!("struct {} is defined twice", common.name));
        }
        collect(&common.fields, &mut raw_defs)?;
    }

    let mut contexts: BTreeMap<String, Versions> = BTreeMap::new();
    fn visit(
        message: &Message,
        fields: &[RawField],
        context: Versions,
        defs: &BTreeMap<String, (usize, &[RawField], Option<String>)>,
        contexts: &mut BTreeMap<String, Versions>,
    ) -> Result<(), String> {
        for raw in fields {
            let field = resolve_field(message, raw)?;
            if let Some(name) = struct_name(&field.ty) {
                let used = field.versions.intersect(context);
                if used.is_empty() {
                    continue;
                }
                let (_, inner, _) = defs
                    .get(name)
                    .ok_or_else(|| format!("{}: unknown struct type {name}", message.name))?;
                let entry = contexts.entry(name.to_string()).or_insert(Versions::NONE);
                *entry = entry.hull(used);
                visit(message, inner, used, defs, contexts)?;
            }
        }
        Ok(())
    }
    visit(
        message,
        &message.fields,
        message.valid,
        &raw_defs,
        &mut contexts,
    )?;

    let mut out = vec![StructDef {
        name: message.name.clone(),
        fields: message
            .fields
            .iter()
            .map(|f| resolve_field(message, f))
            .collect::<Result<_, _>>()?,
        context: message.valid,
        top_level: true,
        about: None,
    }];
    let mut ordered: Vec<_> = raw_defs.into_iter().collect();
    ordered.sort_by_key(|(_, (order, _, _))| *order);
    for (name, (_, fields, about)) in ordered {
        // A struct no valid version uses (e.g. a common struct of a removed
        // version) is still generated, for completeness, as never encodable.
        let context = contexts.get(&name).copied().unwrap_or(Versions::NONE);
        out.push(StructDef {
            fields: fields
                .iter()
                .map(|f| resolve_field(message, f))
                .collect::<Result<_, _>>()?,
            name,
            context,
            top_level: false,
            about,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_handles_acronyms() {
        assert_eq!(snake_case("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake_case("TopicId"), "topic_id");
        assert_eq!(snake_case("KRaftVersion"), "kraft_version");
        assert_eq!(snake_case("IsKRaftController"), "is_kraft_controller");
        assert_eq!(snake_case("SASLMechanism"), "sasl_mechanism");
        assert_eq!(snake_case("Partition0Id"), "partition0_id");
        assert_eq!(rust_field_name("Type"), "r#type");
    }
}
