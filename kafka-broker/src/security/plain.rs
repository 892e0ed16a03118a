//! SASL/PLAIN (RFC 4616): one client message, `authzid NUL authcid NUL passwd`.

use std::collections::BTreeMap;

use super::constant_time_eq;

/// Why a PLAIN message was refused; the texts are Kafka's
/// (`PlainSaslServer`), which it sends to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlainError {
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {0}")]
    Tokens(usize),
    #[error("Authentication failed: username not specified")]
    NoUser,
    #[error("Authentication failed: password not specified")]
    NoPassword,
    #[error(
        "Authentication failed: Client requested an authorization id that is different from username"
    )]
    Authzid,
    #[error("Authentication failed: Invalid username or password")]
    Credentials,
}

/// Checks one PLAIN message against the users; the authenticated user.
pub(crate) fn authenticate(
    message: &[u8],
    users: &BTreeMap<String, String>,
) -> Result<String, PlainError> {
    // Exactly two NULs: RFC 4616 forbids NUL inside each of the three parts.
    let separators = message.iter().filter(|&&b| b == 0).count();
    if separators != 2 {
        return Err(PlainError::Tokens(separators + 1));
    }
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Tokens(separators + 1));
    };
    if user.is_empty() {
        return Err(PlainError::NoUser);
    }
    if password.is_empty() {
        return Err(PlainError::NoPassword);
    }
    // No authorization as someone else: there are no proxy rights here.
    if !authzid.is_empty() && authzid != user {
        return Err(PlainError::Authzid);
    }
    let user = std::str::from_utf8(user).map_err(|_| PlainError::Credentials)?;
    let expected = users.get(user).ok_or(PlainError::Credentials)?;
    if !constant_time_eq(expected.as_bytes(), password) {
        return Err(PlainError::Credentials);
    }
    Ok(user.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        BTreeMap::from([("alice".to_owned(), "alice-secret".to_owned())])
    }

    #[test]
    fn the_right_password_authenticates_with_or_without_authzid() {
        assert_eq!(
            authenticate(b"\0alice\0alice-secret", &users()).as_deref(),
            Ok("alice")
        );
        assert_eq!(
            authenticate(b"alice\0alice\0alice-secret", &users()).as_deref(),
            Ok("alice")
        );
    }

    #[test]
    fn wrong_or_missing_credentials_are_refused() {
        let cases: &[(&[u8], PlainError)] = &[
            (b"\0alice\0wrong", PlainError::Credentials),
            (b"\0bob\0alice-secret", PlainError::Credentials),
            (b"\0alice\0alice-secre", PlainError::Credentials),
            (b"\0\0alice-secret", PlainError::NoUser),
            (b"\0alice\0", PlainError::NoPassword),
            (b"bob\0alice\0alice-secret", PlainError::Authzid),
            (b"\0alice", PlainError::Tokens(2)),
            (b"", PlainError::Tokens(1)),
            (b"\0alice\0alice-secret\0", PlainError::Tokens(4)),
            (b"\0al\xffice\0alice-secret", PlainError::Credentials),
        ];
        for (message, expected) in cases {
            assert_eq!(
                authenticate(message, &users()).as_ref(),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(message)
            );
        }
    }
}
