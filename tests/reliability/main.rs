//! The reliability suite: the real binary as a child process, crashed,
//! starved, flooded, faulted and stopped, and what it acknowledged checked
//! afterwards on the same SQLite file.
//!
//! Round and connection counts are small enough for CI; the environment
//! variables named in each module raise them for long runs.

#[path = "../common/keepalive.rs"]
mod keepalive;
#[path = "../common/postgres.rs"]
mod postgres;
#[path = "../common/process.rs"]
mod process;
#[path = "../common/wire.rs"]
mod wire;

mod crash;
mod faults;
mod leaks;
mod limits;
mod shutdown;
mod support;
