//! The live view: milestones as lines with their time, and on a terminal a small status table
//! redrawn in place under them (plain lines only when stdout is not a terminal).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// See the module doc.
#[derive(Debug)]
pub struct View {
    tty: bool,
    start: Instant,
    status: Vec<String>,
}

impl Default for View {
    fn default() -> Self {
        Self::new()
    }
}

impl View {
    /// A view on stdout, starting its clock now.
    pub fn new() -> Self {
        Self {
            tty: std::io::stdout().is_terminal(),
            start: Instant::now(),
            status: Vec::new(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn clear_status(&self, out: &mut impl Write) {
        if self.tty && !self.status.is_empty() {
            // Up over the table, then clear to the end of the screen.
            let _ = write!(out, "\x1b[{}A\x1b[J", self.status.len());
        }
    }

    fn draw_status(&self, out: &mut impl Write) {
        if self.tty {
            for row in &self.status {
                let _ = writeln!(out, "{row}");
            }
        }
    }

    /// A milestone, printed once with the time since the start.
    pub fn event(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        self.clear_status(&mut out);
        let _ = writeln!(out, "[{:>5.1} s] {text}", self.elapsed().as_secs_f64());
        self.draw_status(&mut out);
        let _ = out.flush();
    }

    /// Replaces the status table (drawn only on a terminal).
    pub fn status(&mut self, rows: Vec<String>) {
        if rows == self.status {
            return;
        }
        let mut out = std::io::stdout().lock();
        self.clear_status(&mut out);
        self.status = rows;
        self.draw_status(&mut out);
        let _ = out.flush();
    }

    /// Takes the table away (before the summary).
    pub fn end_status(&mut self) {
        let mut out = std::io::stdout().lock();
        self.clear_status(&mut out);
        self.status.clear();
        let _ = out.flush();
    }
}
