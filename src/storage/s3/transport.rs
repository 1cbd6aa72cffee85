//! Why a request never got an answer: the transport failure under an SDK dispatch error,
//! named in words a user can act on (refused, unknown host, TLS, timed out, reset).
//!
//! Design note: the SDK wraps the cause in several layers (dispatch failure → connector error
//! → hyper-util client error → connect error → `io::Error` → perhaps a rustls error), and its
//! `Debug` form is what users saw before. [`Transport::of`] walks that chain once and returns a
//! typed cause. It decides by type (`io::ErrorKind`, `rustls::Error`) wherever a type exists;
//! name resolution is the one cause hyper-util reports only as text ("dns error"), so that
//! match lives here alone, with a test. `io::Error` hides its inner error from `source()`,
//! so the walk also descends through `io::Error::get_ref`.

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// The cause of a request that got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Nothing listens at the address (TCP RST on connect).
    Refused,
    /// The host name could not be resolved.
    UnknownHost {
        /// The resolver's own words, e.g. "Name or service not known".
        detail: String,
    },
    /// The TLS handshake failed (e.g. an untrusted certificate, or https to a plain-http port).
    Tls {
        /// rustls's description.
        detail: String,
    },
    /// Connecting or waiting for the answer took longer than its limit.
    TimedOut,
    /// The connection was reset or closed before the answer.
    Reset,
    /// Anything else, in the innermost error's words.
    Other {
        /// The innermost error's first line.
        detail: String,
    },
}

impl Transport {
    /// The cause found in `err`'s chain of sources.
    pub fn of(err: &(dyn StdError + 'static)) -> Transport {
        let chain = chain(err);
        if let Some(tls) = chain.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) {
            return Transport::Tls {
                detail: tls.to_string(),
            };
        }
        if chain.iter().any(|e| is_name_resolution(&e.to_string())) {
            let detail = chain
                .last()
                .map(|e| first_line(&e.to_string()))
                .unwrap_or_default();
            let detail = detail
                .strip_prefix("failed to lookup address information: ")
                .unwrap_or(&detail)
                .to_string();
            // EAI_AGAIN: the resolver could not answer now (no network yet, at boot), which
            // says nothing about the name: a cause another attempt may cure.
            if detail.starts_with("Temporary failure") {
                return Transport::Other {
                    detail: format!("name resolution failed for now ({detail})"),
                };
            }
            return Transport::UnknownHost { detail };
        }
        for e in &chain {
            if let Some(io) = e.downcast_ref::<io::Error>() {
                match io.kind() {
                    io::ErrorKind::ConnectionRefused => return Transport::Refused,
                    io::ErrorKind::TimedOut => return Transport::TimedOut,
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof => return Transport::Reset,
                    _ => {}
                }
            }
        }
        Transport::Other {
            detail: chain
                .last()
                .map(|e| first_line(&e.to_string()))
                .unwrap_or_default(),
        }
    }
}

/// Short phrases, as they follow "cannot connect to ENDPOINT: ".
impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Refused => f.write_str("connection refused"),
            Transport::UnknownHost { detail } => write!(f, "unknown host ({detail})"),
            Transport::Tls { detail } => write!(f, "TLS handshake failed ({detail})"),
            Transport::TimedOut => f.write_str("timed out"),
            Transport::Reset => f.write_str("connection reset"),
            Transport::Other { detail } => f.write_str(detail),
        }
    }
}

/// `err` and its sources, outermost first, descending into `io::Error`s' inner errors.
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        next = match e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

/// hyper-util's connector names a resolver failure "dns error"; glibc's getaddrinfo text
/// follows as its source.
fn is_name_resolution(text: &str) -> bool {
    text == "dns error" || text.starts_with("failed to lookup address information")
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    }

    fn wrap(text: &'static str, source: impl StdError + Send + Sync + 'static) -> Layer {
        Layer {
            text,
            source: Some(Box::new(source)),
        }
    }

    #[test]
    fn names_each_cause() {
        let refused = wrap(
            "dispatch failure",
            wrap(
                "tcp connect error",
                io::Error::from(io::ErrorKind::ConnectionRefused),
            ),
        );
        assert_eq!(Transport::of(&refused), Transport::Refused);
        assert_eq!(Transport::of(&refused).to_string(), "connection refused");

        let dns = wrap(
            "client error (Connect)",
            wrap(
                "dns error",
                io::Error::other("failed to lookup address information: Name or service not known"),
            ),
        );
        assert_eq!(
            Transport::of(&dns).to_string(),
            "unknown host (Name or service not known)"
        );

        // rustls's error travels inside an io::Error, whose source() would skip it.
        let tls = wrap(
            "client error (Connect)",
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            ),
        );
        match Transport::of(&tls) {
            Transport::Tls { detail } => assert!(detail.contains("certificate"), "{detail}"),
            other => panic!("{other:?}"),
        }

        let later = wrap(
            "dns error",
            io::Error::other(
                "failed to lookup address information: Temporary failure in name resolution",
            ),
        );
        assert!(
            matches!(Transport::of(&later), Transport::Other { .. }),
            "EAI_AGAIN is not an unknown host"
        );

        let reset = wrap("io", io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(Transport::of(&reset), Transport::Reset);
        let slow = wrap("io", io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(Transport::of(&slow), Transport::TimedOut);
        let odd = wrap(
            "outer",
            Layer {
                text: "something odd\nwith a second line",
                source: None,
            },
        );
        assert_eq!(Transport::of(&odd).to_string(), "something odd");
    }
}
