//! The log set-up of `agentgate serve`, shared with the benchmark so that what is
//! measured is what runs.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber: one line per event, filtered by `filter`,
/// written by the thread that logs. (A writer thread of its own measured no
/// faster here: the hand-over cost what the write saved.)
pub fn init_to<W>(filter: EnvFilter, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .init();
}
