//! Logging through `tracing`: human-readable by default, JSON with `SOKU_LOG_FORMAT=json`.
//! The filter is `SOKU_LOG` (default `info`). Panics are logged as errors inside the
//! current request's span, so they carry its request id.

use tracing_subscriber::EnvFilter;

/// Libraries whose own log lines are never written, whatever `SOKU_LOG` says, unless it names
/// them: `nom_exif` (which reads the metadata of uploaded videos) logs an ERROR with a few
/// kilobytes of the file's bytes for any file it cannot parse, outside any request; the client
/// gets its 400 `upload_failed` all the same.
const SILENCED: &[&str] = &["nom_exif"];

/// The log filter of a `SOKU_LOG` setting (default `info`, with sqlx and hyper at `warn`).
pub fn filter(setting: Option<&str>) -> EnvFilter {
    let text = setting
        .map(str::trim)
        .filter(|f| !f.is_empty() && EnvFilter::try_new(f).is_ok())
        .unwrap_or("info,sqlx=warn,hyper=warn");
    let mut filter = EnvFilter::try_new(text).unwrap_or_else(|_| EnvFilter::new("info"));
    for target in SILENCED {
        if !text.contains(target)
            && let Ok(off) = format!("{target}=off").parse()
        {
            filter = filter.add_directive(off);
        }
    }
    filter
}

/// `filter`: the `SOKU_LOG` setting, in `tracing` syntax.
pub fn init(json: bool, filter: Option<&str>) {
    let filter = self::filter(filter);
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let installed = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(location = %location, "panic: {}", panic_message(info));
        }));
    }
}

fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    if let Some(s) = info.payload().downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::prelude::*;

    #[test]
    fn nom_exif_is_silenced_whatever_the_setting_unless_it_is_named() {
        for setting in [
            None,
            Some(""),
            Some("info,"),
            Some("debug"),
            Some("warn,soku_server=debug"),
            Some("not a filter =="),
        ] {
            let subscriber = tracing_subscriber::registry().with(super::filter(setting));
            tracing::subscriber::with_default(subscriber, || {
                assert!(
                    !tracing::enabled!(target: "nom_exif::parser", tracing::Level::ERROR),
                    "{setting:?}"
                );
                assert!(
                    tracing::enabled!(target: "soku_server", tracing::Level::WARN),
                    "{setting:?}"
                );
            });
        }
        let named = tracing_subscriber::registry().with(super::filter(Some("info,nom_exif=error")));
        tracing::subscriber::with_default(named, || {
            assert!(tracing::enabled!(target: "nom_exif", tracing::Level::ERROR));
        });
    }
}
