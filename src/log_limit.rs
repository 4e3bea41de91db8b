//! Log lines that a failure repeats per request or per session (a full disk, a database that
//! is down) are limited per call site: at most [`LINES_PER_WINDOW`] in each
//! [`WINDOW`], and the first line of the next window says how many were left out. A failure
//! that hits every write then costs a few lines per window, not tens of thousands a minute,
//! and the log still shows when it began and that it goes on. Use [`log_limited!`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window lines are counted in.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Lines one call site writes per window.
pub const LINES_PER_WINDOW: u32 = 5;

/// One call site's count.
pub struct Limit(Mutex<Count>);

struct Count {
    window_start: Option<Instant>,
    written: u32,
    left_out: u64,
}

/// Whether a line may be written now, and how many were left out before it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Write { left_out_before: u64 },
    LeaveOut,
}

impl Limit {
    pub const fn new() -> Self {
        Self(Mutex::new(Count {
            window_start: None,
            written: 0,
            left_out: 0,
        }))
    }

    pub fn check(&self, now: Instant) -> Verdict {
        let mut count = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let expired = count
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if expired {
            count.window_start = Some(now);
            count.written = 0;
        }
        if count.written < LINES_PER_WINDOW {
            count.written += 1;
            let left_out_before = std::mem::take(&mut count.left_out);
            Verdict::Write { left_out_before }
        } else {
            count.left_out += 1;
            Verdict::LeaveOut
        }
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::new()
    }
}

/// `log::log!` limited per call site (see the module): `log_limited!(Level::Error, "…", …)`.
#[macro_export]
macro_rules! log_limited {
    ($level:expr, $($arg:tt)+) => {{
        static LIMIT: $crate::log_limit::Limit = $crate::log_limit::Limit::new();
        if log::log_enabled!($level) {
            match LIMIT.check(std::time::Instant::now()) {
                $crate::log_limit::Verdict::Write { left_out_before: 0 } => {
                    log::log!($level, $($arg)+)
                }
                $crate::log_limit::Verdict::Write { left_out_before } => log::log!(
                    $level,
                    "{} ({} more like this were left out of the log)",
                    format_args!($($arg)+),
                    left_out_before
                ),
                $crate::log_limit::Verdict::LeaveOut => {}
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_lines_per_window_then_a_count_of_the_rest() {
        let limit = Limit::new();
        let start = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(limit.check(start), Verdict::Write { left_out_before: 0 });
        }
        for n in 0..1000 {
            let at = start + Duration::from_millis(n);
            assert_eq!(limit.check(at), Verdict::LeaveOut);
        }
        assert_eq!(
            limit.check(start + WINDOW),
            Verdict::Write {
                left_out_before: 1000
            }
        );
        assert_eq!(
            limit.check(start + WINDOW),
            Verdict::Write { left_out_before: 0 }
        );
    }
}
