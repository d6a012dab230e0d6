//! The connector registry: which connector publishes a target, by key mode and platform, and
//! the connectors to the real networks built from their settings.

use crate::media::MediaSource;
use crate::net::NetPolicy;
use crate::settings::LiveSettings;
use crate::{
    bluesky, facebook, fetch, instagram, linkedin, mastodon, meta, snapchat, threads, tiktok, x,
    youtube,
};
use soku_core::connector::Connector;
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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

/// The connectors to the real networks. Images named by URL are fetched by
/// `fetch::SafeFetcher`, with spec 8's protections; the server's hosted files (`hosted`) are read
/// from its media store.
pub fn live(settings: &LiveSettings, hosted: Option<soku_media::MediaLibrary>) -> LiveConnectors {
    let net = NetPolicy {
        allow_loopback: settings.allow_loopback,
    };
    if net.allow_loopback {
        tracing::warn!(
            "SOKU_ALLOW_LOOPBACK is set: fetches may reach loopback addresses (tests only)"
        );
    }
    let budget = if settings.media_memory == 0 {
        fetch::DEFAULT_MEMORY_BUDGET
    } else {
        settings.media_memory
    };
    let mut fetcher =
        fetch::SafeFetcher::new(net, Duration::from_secs(60)).with_memory_budget(budget);
    if let Some(library) = hosted {
        fetcher = fetcher.with_hosted(library);
    }
    let media: Arc<dyn MediaSource> = Arc::new(fetcher);
    let linkedin_version = linkedin::version_or_default(settings.linkedin_version.as_deref());
    let mut live: LiveConnectors = HashMap::new();
    live.insert(
        Platform::X,
        Arc::new(x::X::new(settings.x.clone(), media.clone())),
    );
    live.insert(
        Platform::Threads,
        Arc::new(threads::ThreadsConnector::new(
            settings.threads.clone(),
            media.clone(),
        )),
    );
    live.insert(
        Platform::Linkedin,
        Arc::new(
            linkedin::LinkedIn::new(settings.linkedin.clone(), media.clone())
                .with_version(&linkedin_version),
        ),
    );
    live.insert(
        Platform::Bluesky,
        Arc::new(
            bluesky::Bluesky::new(settings.bluesky.clone(), media.clone(), net)
                .with_video_service(&settings.bluesky_video_url),
        ),
    );
    live.insert(
        Platform::Mastodon,
        Arc::new(mastodon::Mastodon::new(
            settings.mastodon.clone(),
            media.clone(),
            net,
        )),
    );
    live.insert(
        Platform::Tiktok,
        Arc::new(tiktok::TikTok::new(settings.tiktok.clone(), media.clone())),
    );
    live.insert(
        Platform::Snapchat,
        Arc::new(snapchat::Snapchat::new(
            settings.snapchat.clone(),
            media.clone(),
        )),
    );
    live.insert(
        Platform::Youtube,
        Arc::new(
            youtube::YouTube::new(settings.youtube.clone(), media)
                .with_token_url(&settings.youtube_token_url),
        ),
    );
    // One Meta app serves both: Facebook Login grants the Pages and their Instagram accounts.
    let graph_version = meta::version_or_default(settings.facebook_graph_version.as_deref());
    live.insert(
        Platform::Facebook,
        Arc::new(
            facebook::FacebookPages::new(settings.facebook.clone())
                .with_version(&graph_version)
                .with_upload_url(&settings.facebook_upload_url),
        ),
    );
    live.insert(
        Platform::Instagram,
        Arc::new(instagram::Instagram::new(settings.facebook.clone()).with_version(&graph_version)),
    );
    live
}
