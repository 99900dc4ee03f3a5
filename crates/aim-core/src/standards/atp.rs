//! ATP (in progress).
