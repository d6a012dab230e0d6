//! The networks a post can target, and the rules each applies before a post is accepted
//! (spec 6.1).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    X,
    Threads,
    Instagram,
    Facebook,
    Linkedin,
    Tiktok,
    Youtube,
    Snapchat,
    Bluesky,
    Mastodon,
}

/// What a platform accepts.
#[derive(Debug, Clone, Copy)]
pub struct PlatformRules {
    /// Longest caption in grapheme clusters (for YouTube: the title, the text's first line).
    pub max_text: Option<usize>,
    /// Most images in one post; `None` where the platform takes no image posts here.
    pub max_images: Option<usize>,
    /// The post must carry an image or a video.
    pub needs_media: bool,
    /// The post must carry a video.
    pub needs_video: bool,
    /// URLs count as 23 characters (X's t.co rule).
    pub urls_count_23: bool,
}

impl Platform {
    pub const ALL: [Platform; 10] = [
        Platform::X,
        Platform::Threads,
        Platform::Instagram,
        Platform::Facebook,
        Platform::Linkedin,
        Platform::Tiktok,
        Platform::Youtube,
        Platform::Snapchat,
        Platform::Bluesky,
        Platform::Mastodon,
    ];

    /// Lower-cased; `twitter` means `x`.
    pub fn parse(name: &str) -> Option<Platform> {
        let lower = name.trim().to_ascii_lowercase();
        if lower == "twitter" {
            return Some(Platform::X);
        }
        Self::ALL.into_iter().find(|p| p.as_str() == lower)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::X => "x",
            Platform::Threads => "threads",
            Platform::Instagram => "instagram",
            Platform::Facebook => "facebook",
            Platform::Linkedin => "linkedin",
            Platform::Tiktok => "tiktok",
            Platform::Youtube => "youtube",
            Platform::Snapchat => "snapchat",
            Platform::Bluesky => "bluesky",
            Platform::Mastodon => "mastodon",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Platform::X => "X",
            Platform::Threads => "Threads",
            Platform::Instagram => "Instagram",
            Platform::Facebook => "Facebook",
            Platform::Linkedin => "LinkedIn",
            Platform::Tiktok => "TikTok",
            Platform::Youtube => "YouTube",
            Platform::Snapchat => "Snapchat",
            Platform::Bluesky => "Bluesky",
            Platform::Mastodon => "Mastodon",
        }
    }

    pub fn rules(self) -> PlatformRules {
        let r = |max_text, max_images, needs_media, needs_video, urls_count_23| PlatformRules {
            max_text,
            max_images,
            needs_media,
            needs_video,
            urls_count_23,
        };
        match self {
            Platform::X => r(Some(280), Some(4), false, false, true),
            Platform::Threads => r(Some(500), Some(20), false, false, false),
            Platform::Instagram => r(Some(2200), Some(10), true, false, false),
            Platform::Facebook => r(Some(5000), Some(10), false, false, false),
            Platform::Linkedin => r(Some(3000), Some(9), false, false, false),
            Platform::Tiktok => r(Some(2200), Some(35), true, false, false),
            Platform::Youtube => r(Some(100), None, true, true, false),
            Platform::Snapchat => r(None, Some(1), true, false, false),
            Platform::Bluesky => r(Some(300), Some(4), false, false, false),
            Platform::Mastodon => r(Some(500), Some(4), false, false, false),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Platform::parse("twitter"), Some(Platform::X));
        assert_eq!(Platform::parse("TWITTER"), Some(Platform::X));
        assert_eq!(Platform::parse("X"), Some(Platform::X));
        assert_eq!(Platform::parse("LinkedIn"), Some(Platform::Linkedin));
        assert_eq!(Platform::parse("myspace"), None);
        for p in Platform::ALL {
            assert_eq!(Platform::parse(p.as_str()), Some(p));
        }
    }
}
