//! A command that makes its session actor panic, for the test that a panicking actor still
//! releases its successor. Nothing in the service sends it, and it cannot be reached over HTTP.

use super::{Answer, Command};
use crate::actors::session::overlay::Overlay;

#[doc(hidden)]
pub(crate) struct PanicForTest;

impl Command for PanicForTest {
    type Answer = ();
    const MAY_CREATE: bool = true;

    fn plan(self, overlay: &mut Overlay<'_>, _reply: Answer<()>) {
        panic!("PanicForTest: session {}", overlay.key().session_id);
    }
}
