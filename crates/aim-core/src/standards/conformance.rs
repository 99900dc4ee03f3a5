//! Conformance runner (in progress).
