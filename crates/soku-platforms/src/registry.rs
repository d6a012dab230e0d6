//! The connector registry: which connector publishes a target, by key mode and platform.

use soku_core::connector::Connector;
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use std::collections::HashMap;
use std::sync::Arc;

/// The real networks' connectors, by platform.
pub type LiveConnectors = HashMap<Platform, Arc<dyn Connector>>;

/// The connectors the engine publishes through: the simulated platforms for test mode, and
/// the real ones that exist for live mode.
#[derive(Clone)]
pub struct Connectors {
    pub simulated: Arc<dyn Connector>,
    pub live: LiveConnectors,
}

impl Connectors {
    pub fn for_target(&self, mode: KeyMode, platform: Platform) -> Option<Arc<dyn Connector>> {
        match mode {
            KeyMode::Test => Some(self.simulated.clone()),
            KeyMode::Live => self.live.get(&platform).cloned(),
        }
    }
}
