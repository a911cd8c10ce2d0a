//! Skills: which skill a tool call belongs to, and (on other branches) the
//! skill manifest, its capabilities and its identity.

pub mod attribution;
