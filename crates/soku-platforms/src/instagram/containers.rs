//! Creating and waiting for containers, the quota, and finding published media.

use super::*;

impl Instagram {
    /// `settings`: the Meta app's (`api_url` = the `graph.facebook.com` base without a version,
    /// `auth_url` = the `www.facebook.com` base, client id and secret = the Facebook app's).
    pub fn new(settings: PlatformSettings) -> Self {
        Self {
            app: MetaApp::new(settings),
        }
    }

    /// Calls this Graph API version (`v26.0`) instead of [`crate::meta::GRAPH_VERSION`], for
    /// publishing and for Facebook Login; anything not of that form is ignored with a warning.
    pub fn with_version(mut self, version: &str) -> Self {
        self.app.set_version(version);
        self
    }

    /// How often and how long container status is polled (tests shorten both; the default is
    /// [`graph::Polling::DEFAULT`]).
    pub fn with_polling(mut self, interval: Duration, deadline: Duration) -> Self {
        self.app.polling = graph::Polling { interval, deadline };
        self
    }

    /// One Graph call: its JSON body on 2xx, else the failure it stands for, refined by
    /// Instagram's error table.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        effect: Effect,
    ) -> Result<T, PublishError> {
        graph::call(PLATFORM, request, effect)
            .await
            .map_err(|e| refine(e, effect))
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        token: &str,
    ) -> Result<T, PublishError> {
        let mut q = query.to_vec();
        q.push(("access_token", token));
        self.call(
            self.app.client.get(self.app.url(path)).query(&q),
            Effect::Repeatable,
        )
        .await
    }

    /// Fails with `quota_exceeded` when the account has used its API publishing quota. A read
    /// that fails otherwise than with a refused token or a throttle lets publishing go on
    /// (module docs).
    pub(super) async fn check_quota(&self, user: &str, token: &str) -> Result<(), PublishError> {
        let read = self
            .get::<graph::Page<QuotaRow>>(
                &format!("{user}/content_publishing_limit"),
                &[("fields", "config,quota_usage")],
                token,
            )
            .await;
        let page = match read {
            Ok(page) => page,
            // The token or the throttle would refuse the next calls too.
            Err(e) if e.code == TOKEN_INVALID || e.code == "rate_limited" => return Err(e),
            Err(e) => {
                tracing::warn!(code = %e.code, "could not read the Instagram publishing quota; publishing anyway");
                return Ok(());
            }
        };
        let Some(row) = page.data.into_iter().next() else {
            return Ok(());
        };
        let (Some(used), Some(config)) = (row.quota_usage, row.config) else {
            return Ok(());
        };
        let Some(total) = config.quota_total else {
            return Ok(());
        };
        if used >= total {
            let hours = config.quota_duration.unwrap_or(86_400) / 3600;
            return Err(quota_exceeded(format!(
                "Instagram allows {total} API-published posts per {hours} hours; this account has used them. The post will be tried again later."
            )));
        }
        Ok(())
    }

    pub(super) async fn create_container(
        &self,
        user: &str,
        token: &str,
        params: &[(&str, &str)],
    ) -> Result<String, PublishError> {
        let mut form = params.to_vec();
        form.push(("access_token", token));
        let created: IdOnly = self
            .call(
                self.app
                    .client
                    .post(self.app.url(&format!("{user}/media")))
                    .form(&form),
                Effect::Repeatable,
            )
            .await?;
        Ok(created.id)
    }

    /// One read of a container's `status_code`. A container Instagram no longer knows reads
    /// `Gone`; one that expired, or failed in a way worth a new container, `Expired`; a status
    /// this server does not know (or none) `Unknown`.
    pub(super) async fn status(&self, container: &str, token: &str) -> Result<Read, PublishError> {
        let read = self
            .get::<ContainerStatus>(container, &[("fields", "status_code,status")], token)
            .await;
        let status = match read {
            Ok(s) => s,
            Err(e) => match missing(&e) {
                Some(state) => return Ok(Read::Done(state)),
                None => return Err(e),
            },
        };
        Ok(match status.status_code.as_deref() {
            Some("IN_PROGRESS") => Read::InProgress,
            Some("FINISHED") => Read::Done(State::Finished),
            Some("PUBLISHED") => Read::Done(State::Published),
            Some("EXPIRED") => Read::Done(State::Expired),
            Some("ERROR") => {
                let sub = status.status.unwrap_or_default();
                if TRANSIENT_SUBCODES.contains(&sub.trim()) {
                    Read::Done(State::Expired)
                } else {
                    Read::Done(State::Failed(sub))
                }
            }
            other => Read::Unknown(
                other
                    .map(|c| c.chars().take(40).collect())
                    .unwrap_or_else(|| "none".to_owned()),
            ),
        })
    }

    /// Polls containers until none is IN_PROGRESS (first read at once, then `backoff`'s
    /// pauses), and answers each one's state; still processing at the attempt's deadline is
    /// `media_processing`, a status this server does not know `container_status_unknown`.
    pub(super) async fn wait_all(
        &self,
        containers: &[String],
        token: &str,
        backoff: &mut graph::Backoff,
    ) -> Result<Vec<State>, PublishError> {
        let mut states: Vec<Option<State>> = vec![None; containers.len()];
        loop {
            for (id, state) in containers.iter().zip(states.iter_mut()) {
                if state.is_none() {
                    match self.status(id, token).await? {
                        Read::InProgress => {}
                        Read::Done(s) => *state = Some(s),
                        Read::Unknown(code) => return Err(unknown_status(&code)),
                    }
                }
            }
            if states.iter().all(Option::is_some) {
                return Ok(states.into_iter().flatten().collect());
            }
            if !backoff.wait().await {
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "media_processing",
                    "Instagram was still processing the post's media; the post will be tried again.",
                ));
            }
        }
    }

    /// One container's state once it is no longer processing ([`Self::wait_all`]).
    pub(super) async fn wait_one(
        &self,
        container: &str,
        token: &str,
        backoff: &mut graph::Backoff,
    ) -> Result<State, PublishError> {
        let mut states = self
            .wait_all(&[container.to_owned()], token, backoff)
            .await?;
        Ok(states.remove(0))
    }

    /// A FINISHED top-level container for the post, reusing what earlier attempts saved in
    /// `saved` (and saving each container created there); or, when the saved container may
    /// already be a post, what it became.
    pub(super) async fn ready_container(
        &self,
        request: &PublishRequest,
        shape: &Shape<'_>,
        token: &str,
        saved: &mut Saved,
        backoff: &mut graph::Backoff,
    ) -> Result<Ready, PublishError> {
        let user = request.account.account_id.as_str();
        let mut quota_checked = false;

        if let Some(id) = saved.container_id.clone() {
            match self.wait_one(&id, token, backoff).await? {
                State::Finished => return Ok(Ready::Container(id)),
                State::Published => return Ok(Ready::Published),
                // `media_publish` was sent for it: it may be a post now (module docs).
                State::Gone if saved.publish_sent => return Ok(Ready::Vanished),
                State::Failed(sub) => return Err(container_failed(shape, &sub)),
                State::Gone => tracing::info!(
                    "the Instagram container an earlier attempt created is gone, and it was never sent to be published; creating another"
                ),
                State::Expired => tracing::info!(
                    "the Instagram container an earlier attempt created expired; creating another"
                ),
            }
            saved.forget_container();
        }

        let caption = shape.caption();
        let mut params: Vec<(&str, &str)> = Vec::new();
        let children_list;
        match shape {
            Shape::Image { url, .. } => params.push(("image_url", url)),
            Shape::Reel {
                video,
                share_to_feed,
                cover,
                trial,
                ..
            } => {
                params.push(("media_type", "REELS"));
                params.push(("video_url", video));
                if let Some(s) = share_to_feed {
                    params.push(("share_to_feed", if *s { "true" } else { "false" }));
                }
                if let Some(c) = cover {
                    params.push(("cover_url", c));
                }
                if *trial {
                    params.push(("trial_params", r#"{"graduation_strategy":"MANUAL"}"#));
                }
            }
            Shape::Story(item) => {
                params.push(("media_type", "STORIES"));
                match item {
                    Item::Image(u) => params.push(("image_url", u)),
                    Item::Video(u) => params.push(("video_url", u)),
                }
            }
            Shape::Carousel { items, .. } => {
                let children = self
                    .carousel_items(request, items, token, saved, &mut quota_checked, backoff)
                    .await?;
                children_list = children.join(",");
                params.push(("media_type", "CAROUSEL"));
                params.push(("children", children_list.as_str()));
            }
        }
        if let Some(c) = caption {
            params.push(("caption", c));
        }
        if !quota_checked {
            self.check_quota(user, token).await?;
        }
        let id = self.create_container(user, token, &params).await?;
        saved.set_container(&id);
        // Nothing is published yet: a failure here only leaves an unused container behind.
        request.progress.save(saved.to_json()).await?;
        match self.wait_one(&id, token, backoff).await? {
            State::Finished => Ok(Ready::Container(id)),
            State::Failed(sub) => Err(container_failed(shape, &sub)),
            // Gone or expired moments after it was made (or published by someone else).
            State::Gone | State::Expired | State::Published => Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "container_expired",
                "Instagram dropped the post's media container before it was published.",
            )),
        }
    }

    /// The carousel's item containers, FINISHED: the saved ones still usable, new ones for the
    /// others (each saved as soon as created).
    pub(super) async fn carousel_items(
        &self,
        request: &PublishRequest,
        items: &[Item<'_>],
        token: &str,
        saved: &mut Saved,
        quota_checked: &mut bool,
        backoff: &mut graph::Backoff,
    ) -> Result<Vec<String>, PublishError> {
        let user = request.account.account_id.as_str();
        saved.children.resize(items.len(), None);
        for (i, item) in items.iter().enumerate() {
            if let Some(id) = saved.children[i].clone() {
                match self.status(&id, token).await? {
                    Read::InProgress | Read::Done(State::Finished) => continue,
                    Read::Done(State::Failed(sub)) => {
                        return Err(container_failed_item(*item, &sub));
                    }
                    // Items are never published on their own: one that is no longer usable
                    // is replaced.
                    Read::Done(State::Gone | State::Expired | State::Published) => {
                        saved.children[i] = None
                    }
                    Read::Unknown(code) => return Err(unknown_status(&code)),
                }
            }
            if !*quota_checked {
                self.check_quota(user, token).await?;
                *quota_checked = true;
            }
            let params: Vec<(&str, &str)> = match item {
                Item::Image(u) => vec![("image_url", u), ("is_carousel_item", "true")],
                Item::Video(u) => vec![
                    ("media_type", "VIDEO"),
                    ("video_url", u),
                    ("is_carousel_item", "true"),
                ],
            };
            let id = self.create_container(user, token, &params).await?;
            saved.children[i] = Some(id);
            request.progress.save(saved.to_json()).await?;
        }
        let ids: Vec<String> = saved.children.iter().flatten().cloned().collect();
        let states = self.wait_all(&ids, token, backoff).await?;
        for (item, state) in items.iter().zip(states) {
            match state {
                State::Finished => {}
                State::Failed(sub) => return Err(container_failed_item(*item, &sub)),
                State::Gone | State::Expired | State::Published => {
                    return Err(PublishError::new(
                        FailureClass::Retryable { retry_after: None },
                        "container_expired",
                        "Instagram dropped a carousel item's container before it was published.",
                    ));
                }
            }
        }
        Ok(ids)
    }

    /// What an earlier attempt's `media_publish` made of the saved container (it reads
    /// PUBLISHED, or Instagram no longer knows it after it was sent to be published): the post
    /// when the media list shows it, else `Ambiguous` (never a new container).
    pub(super) async fn published_earlier(
        &self,
        request: &PublishRequest,
        shape: &Shape<'_>,
        token: &str,
        saved: &mut Saved,
        why: &str,
    ) -> Result<PublishedPost, PublishError> {
        match self.find_media(request, shape, token).await? {
            Some(post) => {
                keep_post(request, saved, &post).await;
                Ok(post)
            }
            None => Err(PublishError::new(
                FailureClass::Ambiguous,
                "already_published",
                format!("{why}, and the post was not found in the account's media."),
            )),
        }
    }

    /// The media a published container became, looked for as reconciliation does.
    pub(super) async fn find_media(
        &self,
        request: &PublishRequest,
        shape: &Shape<'_>,
        token: &str,
    ) -> Result<Option<PublishedPost>, PublishError> {
        let user = request.account.account_id.as_str();
        let not_before = request.not_before - chrono::Duration::seconds(RECONCILE_SLACK_SECS);
        let since = not_before.timestamp().max(0).to_string();
        let (edge, want_type, want_product) = shape.read_back();
        let story = matches!(shape, Shape::Story(_));
        let want_caption = shape.caption().map(str::trim).filter(|c| !c.is_empty());
        let mut candidates = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let mut query = vec![
                ("fields", MEDIA_FIELDS),
                ("limit", RECONCILE_PAGE_SIZE_PARAM),
            ];
            // `/media` takes `since`; `/stories` does not (the IG User spec lists no
            // parameter for it): its rows are filtered by their timestamps below.
            if !story {
                query.push(("since", since.as_str()));
            }
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let page: graph::Page<IgMedia> =
                self.get(&format!("{user}/{edge}"), &query, token).await?;
            for m in &page.data {
                let recent = m
                    .timestamp
                    .as_deref()
                    .and_then(graph::parse_timestamp)
                    .is_none_or(|t| t >= not_before);
                let same_caption = story
                    || m.caption
                        .as_deref()
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        == want_caption;
                let same_type = m.media_type.as_deref() == Some(want_type)
                    && m.media_product_type
                        .as_deref()
                        .is_none_or(|p| p == want_product);
                if recent && same_caption && same_type {
                    let found = PublishedPost {
                        id: m.id.clone(),
                        url: m.permalink.clone(),
                    };
                    if !story {
                        return Ok(Some(found));
                    }
                    candidates.push(found);
                }
            }
            match page.next_cursor(RECONCILE_PAGE_SIZE) {
                Some(cursor) => after = Some(cursor),
                None => {
                    // A story without a caption is told apart only when it is the only one.
                    return Ok(if candidates.len() == 1 {
                        candidates.pop()
                    } else {
                        None
                    });
                }
            }
        }
        Ok(None)
    }
}
