//! Four eyes: a request that waits for approval (a support member's refund or waiver above their
//! limit) is decided by a finance or admin member other than the one who asked, and a rejection
//! says why. Refunds and waivers decide through these, so both refuse alike; both are made once
//! per request id.

use app::model::staff::Principal;

use crate::error::Error;

/// The longest a note on a decision (or a withdrawal) may be, in characters.
pub const MAX_NOTE: usize = 1000;

/// The longest request id.
const MAX_REQUEST_ID: usize = 100;

/// Checks a request's id (made when its form opens; the same id sent again is the same request).
pub fn check_request_id(request_id: &str) -> Result<(), Error> {
    let ok = !request_id.is_empty()
        && request_id.len() <= MAX_REQUEST_ID
        && request_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "request_id",
            format!("give 1 to {MAX_REQUEST_ID} letters, digits, '-', '_', '.' or ':' (a UUID made when the form opens)"),
        ))
    }
}

/// Whether `principal` is who asked: the request's `requested_by_id`, or its `requested_by` email
/// (requests recorded before staff ids were have only that).
pub fn is_requester(requested_by_id: Option<i64>, requested_by: &str, principal: &Principal) -> bool {
    requested_by_id == Some(principal.staff.id) || requested_by == principal.staff.email
}

/// Refuses (403) a decision of `what` (`refund 12`, `waiver 3`) by the member who asked for it.
pub fn four_eyes(
    requested_by_id: Option<i64>,
    requested_by: &str,
    principal: &Principal,
    what: &str,
) -> Result<(), Error> {
    if is_requester(requested_by_id, requested_by, principal) {
        return Err(Error::Forbidden(format!(
            "{what} was requested by you; another finance or admin member must decide it (four eyes)"
        )));
    }
    Ok(())
}

/// A note on a change, trimmed: at most [`MAX_NOTE`] characters, or a 422 naming `note`.
pub fn trimmed_note(note: &str) -> Result<&str, Error> {
    let note = note.trim();
    if note.chars().count() > MAX_NOTE {
        return Err(Error::invalid("note", format!("at most {MAX_NOTE} characters")));
    }
    Ok(note)
}

/// The note of a decision on a `kind` (`refund`, `waiver`), trimmed: as [`trimmed_note`], and
/// required to reject (a 422 naming `note`).
pub fn decision_note<'a>(note: &'a str, approve: bool, kind: &str) -> Result<&'a str, Error> {
    let note = trimmed_note(note)?;
    if !approve && note.is_empty() {
        return Err(Error::invalid("note", format!("say why the {kind} is rejected")));
    }
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::staff::{AuthMethod, Role, Staff};

    fn member(id: i64, email: &str) -> Principal {
        Principal {
            staff: Staff {
                id,
                email: email.into(),
                role: Role::Finance,
                created_at: String::new(),
                disabled_at: None,
            },
            method: AuthMethod::Session,
            source: String::new(),
        }
    }

    #[test]
    fn the_requester_may_not_decide_by_id_or_by_email() {
        let me = member(7, "me@example.com");
        let refused = four_eyes(Some(7), "someone@example.com", &me, "refund 12").unwrap_err();
        assert!(matches!(&refused, Error::Forbidden(m)
            if m == "refund 12 was requested by you; another finance or admin member must decide it (four eyes)"));
        assert!(four_eyes(None, "me@example.com", &me, "waiver 3").is_err(), "an old request: by email");
        assert!(four_eyes(Some(8), "other@example.com", &me, "waiver 3").is_ok());
    }

    #[test]
    fn a_request_id_is_a_short_plain_token() {
        assert!(check_request_id("0f8e2c1a-77b3-4c3e-9d51-2f0c5e4b9a10").is_ok());
        assert!(check_request_id(&"a".repeat(100)).is_ok());
        for bad in ["", "two words", "semi;colon", &"a".repeat(101)] {
            let refused = check_request_id(bad).unwrap_err();
            assert!(
                matches!(&refused, Error::Invalid { field, .. } if field == "request_id"),
                "{bad:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_rejection_needs_a_note_and_no_note_is_too_long() {
        assert_eq!(decision_note("  ok  ", false, "refund").unwrap(), "ok");
        assert_eq!(decision_note("   ", true, "refund").unwrap(), "");
        let missing = decision_note(" ", false, "waiver").unwrap_err();
        assert!(
            matches!(&missing, Error::Invalid { field, message }
            if field == "note" && message == "say why the waiver is rejected"),
            "{missing:?}"
        );
        let long = "x".repeat(MAX_NOTE + 1);
        assert!(matches!(decision_note(&long, true, "refund"), Err(Error::Invalid { .. })));
        assert_eq!(
            trimmed_note(&"é".repeat(MAX_NOTE)).unwrap().chars().count(),
            MAX_NOTE,
            "characters, not bytes"
        );
    }
}
