//! Key layouts of the `activity` column family: the aggregation engine's
//! per-user state (`user`) and each session's first local day
//! (`user ‖ session id`, at least one byte after the user).

use super::{user, user_and_name, USER_BYTES};

/// Per-user state.
pub fn user_state(user_id: u32) -> Vec<u8> {
    user(user_id).to_vec()
}

/// A session's first local day.
pub fn session(user_id: u32, session_id: &str) -> Vec<u8> {
    user_and_name(user_id, session_id)
}

/// Whether an `activity` key is a session entry (else the user's state).
pub fn is_session(key: &[u8]) -> bool {
    key.len() > USER_BYTES
}
