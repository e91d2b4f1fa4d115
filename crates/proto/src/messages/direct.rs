//! Client <-> client messages, on direct connections (`client send`).

use serde::{Deserialize, Serialize};

use crate::bounded::BoundedString;
use crate::limits::MAX_TEXT_LEN;
use crate::version::{Hello, Welcome};
use crate::wire_error::WireError;

/// A direct text message.
pub type Text = BoundedString<MAX_TEXT_LEN>;

/// What two clients say to each other directly. The sender's identity comes from the TLS
/// handshake, not from the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectMessage {
    /// Opens the session.
    Hello(Hello),
    /// Accepts it.
    Welcome(Welcome),
    /// A text for the user.
    Text(Text),
    /// The text was shown to the user.
    Delivered,
    /// Refused.
    Error(WireError),
}
