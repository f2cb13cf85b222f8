//! `CloseInfo` and the standard's validation of a close code and reason.

use crate::Error;
use crate::proto::MAX_CLOSE_REASON_LEN;

/// The WHATWG `WebSocketCloseInfo`: what `close()` sends and what `closed` resolves with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code; `None` sends a Close without a body (reported as 1005 by the peer).
    pub close_code: Option<u16>,
    /// The reason, at most 123 bytes of UTF-8.
    pub reason: String,
}

/// The standard's checks for a code and reason given by the user: the code must be 1000 or
/// 3000-4999 (`InvalidAccessError`), the reason at most 123 UTF-8 bytes (`SyntaxError`). A
/// reason without a code means 1000. Returns the code to send.
pub(crate) fn validate_close(code: Option<u16>, reason: &str) -> Result<Option<u16>, Error> {
    if let Some(code) = code
        && code != 1000
        && !(3000..=4999).contains(&code)
    {
        return Err(Error::InvalidAccess(format!(
            "close code {code} is neither 1000 nor in 3000-4999"
        )));
    }
    if reason.len() > MAX_CLOSE_REASON_LEN {
        return Err(Error::Syntax(format!(
            "close reason of {} bytes exceeds {MAX_CLOSE_REASON_LEN}",
            reason.len()
        )));
    }
    Ok(code.or(if reason.is_empty() { None } else { Some(1000) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_reasons_are_checked_as_the_standard_says() {
        assert_eq!(validate_close(None, ""), Ok(None));
        assert_eq!(validate_close(None, "bye"), Ok(Some(1000)));
        assert_eq!(validate_close(Some(4999), ""), Ok(Some(4999)));
        for bad in [0, 999, 1001, 1005, 2999, 5000] {
            assert!(
                matches!(validate_close(Some(bad), ""), Err(Error::InvalidAccess(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            validate_close(Some(1000), &"é".repeat(62)),
            Err(Error::Syntax(_))
        ));
        assert_eq!(validate_close(Some(1000), &"x".repeat(123)), Ok(Some(1000)));
    }
}
