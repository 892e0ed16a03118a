//! Java `.properties` files, the `client.properties` that Kafka's tools and
//! Java services keep their settings in (`security.protocol`,
//! `sasl.jaas.config`, ...), read as `(name, value)` pairs for
//! [`ProducerConfig::from_properties`](crate::producer::ProducerConfig::from_properties)
//! and [`ConsumerConfig::from_properties`](crate::consumer::ConsumerConfig::from_properties).
//!
//! ```
//! use kafka_client::producer::ProducerConfig;
//!
//! let file = "# written by ops\n\
//!             bootstrap.servers=broker-1.example:9093\n\
//!             security.protocol = SASL_SSL\n\
//!             sasl.mechanism: SCRAM-SHA-512\n\
//!             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \\\n\
//!                 required username=\"billing\" password=\"s3cret\";\n";
//! let pairs = kafka_client::properties_file::parse(file)?;
//! let settings = ProducerConfig::from_properties(
//!     pairs.iter().map(|(name, value)| (name.as_str(), value.as_str())),
//! )?
//! .build()?;
//! assert_eq!(settings.network.security.sasl_username.as_deref(), Some("billing"));
//! # Ok::<(), kafka_client::Error>(())
//! ```

use std::path::Path;

use crate::{Error, Result};

/// Reads the `(name, value)` pairs of a properties file, in file order.
pub fn load(path: impl AsRef<Path>) -> Result<Vec<(String, String)>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(
            "properties file",
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    parse(&text)
}

/// Parses properties text as `java.util.Properties.load` does: `#` and `!`
/// comment lines, `=`, `:` or white space between name and value, a
/// trailing backslash continuing the line, and the escapes `\t`, `\n`,
/// `\r`, `\f`, `\uXXXX` and `\` before any other character.
pub fn parse(text: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let first = first.trim_start();
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continued lines; the next line's leading white space goes.
        let mut logical = first.to_owned();
        while ends_continued(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        pairs.push(split(&logical)?);
    }
    Ok(pairs)
}

/// An odd number of trailing backslashes: the last one escapes the newline.
fn ends_continued(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// One logical line into its unescaped name and value.
fn split(line: &str) -> Result<(String, String)> {
    let mut chars = line.chars().peekable();
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        match c {
            '\\' => {
                chars.next();
                name.push(unescape(&mut chars)?);
            }
            '=' | ':' | ' ' | '\t' | '\u{c}' => break,
            c => {
                chars.next();
                name.push(c);
            }
        }
    }
    // White space, then at most one `=` or `:`, then white space.
    while chars
        .peek()
        .is_some_and(|c| matches!(c, ' ' | '\t' | '\u{c}'))
    {
        chars.next();
    }
    if chars.peek().is_some_and(|c| matches!(c, '=' | ':')) {
        chars.next();
    }
    while chars
        .peek()
        .is_some_and(|c| matches!(c, ' ' | '\t' | '\u{c}'))
    {
        chars.next();
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        if c == '\\' {
            value.push(unescape(&mut chars)?);
        } else {
            value.push(c);
        }
    }
    Ok((name, value))
}

/// The character after a backslash.
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char> {
    Ok(match chars.next() {
        Some('t') => '\t',
        Some('n') => '\n',
        Some('r') => '\r',
        Some('f') => '\u{c}',
        Some('u') => {
            let hex: String = chars.by_ref().take(4).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 4)
                .and_then(char::from_u32)
                .ok_or_else(|| Error::config("properties file", format!("bad escape `\\u{hex}`")))?
        }
        Some(other) => other,
        // A lone backslash at the very end of the file.
        None => '\\',
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).expect("parses")
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text = "# a comment\n  ! another\n\na=1\nb = 2\nc:3\nd 4\ne\n  f\t=\t six \n";
        assert_eq!(
            pairs(text),
            [
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "4"),
                pair("e", ""),
                pair("f", "six "),
            ]
        );
    }

    #[test]
    fn continuations_and_escapes() {
        let text = "jaas=Login required \\\n    username=\"u\" \\\n  password=\"p\";\n\
                    path=C:\\\\kafka\\\\ca.pem\n\
                    key\\ with\\=odd\\:chars=v\n\
                    tab=a\\tb\n\
                    unicode=\\u00e9t\\u00E9\n\
                    even=ends with two\\\\\n\
                    next=line\n";
        assert_eq!(
            pairs(text),
            [
                pair("jaas", "Login required username=\"u\" password=\"p\";"),
                pair("path", "C:\\kafka\\ca.pem"),
                pair("key with=odd:chars", "v"),
                pair("tab", "a\tb"),
                pair("unicode", "été"),
                pair("even", "ends with two\\"),
                pair("next", "line"),
            ]
        );
    }

    #[test]
    fn bad_unicode_escapes_are_refused_and_crlf_is_read() {
        assert!(parse("a=\\u12").is_err());
        assert!(parse("a=\\uzzzz").is_err());
        assert!(parse("a=\\ud800").is_err(), "a lone surrogate is no char");
        assert_eq!(pairs("a=1\r\nb=2\r\n"), [pair("a", "1"), pair("b", "2")]);
        assert_eq!(pairs("dangling=\\"), [pair("dangling", "")]);
    }

    #[test]
    fn a_missing_file_names_itself() {
        let err = load("/no/such/client.properties").unwrap_err();
        assert!(
            err.to_string().contains("/no/such/client.properties"),
            "{err}"
        );
    }
}
