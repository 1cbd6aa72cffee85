//! Which version of each key a point-in-time mount shows, as pure functions over a page of
//! `ListObjectVersions`; and the listing token that carries a page's end to the next.
//!
//! Design note: S3 lists versions by key, newest first, and a page may end in the middle of a
//! key's versions. A key is *settled* once a version not after TIME has been seen (the
//! newest such one is its state at TIME: shown, or absent when it is a delete marker); its
//! older versions on the next page are then skipped. A key whose versions seen so far are all
//! after TIME stays open: its older versions on the next page decide it. A key with no
//! version at or before TIME did not exist then: absent.

use std::cmp::Reverse;
use std::time::SystemTime;

use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

/// One entry of `ListObjectVersions`: a version or a delete marker of `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEntry {
    /// Full key.
    pub key: String,
    /// Version id (`null` for a version written while versioning was off).
    pub version_id: String,
    /// When it was written.
    pub last_modified: SystemTime,
    /// Size in bytes (0 for a delete marker).
    pub size: u64,
    /// ETag, with its quotes (empty for a delete marker).
    pub etag: String,
    /// Storage class, when the listing names one.
    pub storage_class: Option<String>,
    /// Whether it is the key's current version.
    pub is_latest: bool,
    /// Whether it is a delete marker.
    pub is_delete_marker: bool,
}

/// Where a `ListObjectVersions` page ended: its `NextKeyMarker` and `NextVersionIdMarker`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionMarker {
    /// The key the next page starts at (or after, without a version id).
    pub key: String,
    /// The version of `key` the next page starts after.
    pub version_id: Option<String>,
}

/// One page of `ListObjectVersions` with a prefix and a delimiter.
#[derive(Clone, Debug, Default)]
pub struct VersionPage {
    /// Versions and delete markers, in any order (S3's own is by key, newest first).
    pub entries: Vec<VersionEntry>,
    /// Common prefixes, each ending with the delimiter.
    pub prefixes: Vec<String>,
    /// Where the next page starts; `None` when this was the last.
    pub next: Option<VersionMarker>,
}

/// A key's state at TIME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// Full key.
    pub key: String,
    /// The version shown; `None` when the key is absent at TIME (deleted, or not yet written).
    pub version: Option<VersionEntry>,
}

/// What one page tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Each key settled by this page, in key order.
    pub chosen: Vec<Chosen>,
    /// The page's last key, when it is settled: its versions on the next page are skipped.
    pub settled_last: Option<String>,
}

/// The state at `as_of` of each key in `entries`. `skip` is a key settled by the previous page
/// (its remaining versions are ignored); `last_page` says no page follows, so that a key
/// still open at the end is absent rather than continued.
pub fn choose(
    mut entries: Vec<VersionEntry>,
    skip: Option<&str>,
    as_of: SystemTime,
    last_page: bool,
) -> Filtered {
    // Stable: among equal times, the current version first, then the server's order.
    entries.sort_by(|a, b| {
        a.key.cmp(&b.key).then_with(|| {
            Reverse((a.last_modified, a.is_latest)).cmp(&Reverse((b.last_modified, b.is_latest)))
        })
    });
    let mut out = Filtered::default();
    let mut rest = entries.as_slice();
    while let Some(first) = rest.first() {
        let len = rest.iter().take_while(|e| e.key == first.key).count();
        let (group, tail) = rest.split_at(len);
        rest = tail;
        let is_last = rest.is_empty();
        if skip == Some(first.key.as_str()) {
            if is_last {
                out.settled_last = Some(first.key.clone());
            }
            continue;
        }
        match group.iter().find(|e| e.last_modified <= as_of) {
            Some(at) => {
                if is_last {
                    out.settled_last = Some(at.key.clone());
                }
                out.chosen.push(Chosen {
                    key: at.key.clone(),
                    version: (!at.is_delete_marker).then(|| at.clone()),
                });
            }
            // Every version seen is newer than TIME: older ones may follow on the next page.
            None if is_last && !last_page => {}
            None => out.chosen.push(Chosen {
                key: first.key.clone(),
                version: None,
            }),
        }
    }
    out
}

/// A listing token: where the next page starts, and the key settled at the end of this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The server's marker.
    pub marker: VersionMarker,
    /// A key whose remaining versions are skipped.
    pub skip: Option<String>,
}

impl Token {
    /// The token as one opaque string: three percent-encoded fields, `-` for none.
    pub fn encode(&self) -> String {
        let enc = |s: Option<&str>| match s {
            Some(s) => format!("={}", utf8_percent_encode(s, NON_ALPHANUMERIC)),
            None => "-".to_string(),
        };
        format!(
            "{} {} {}",
            enc(Some(&self.marker.key)),
            enc(self.marker.version_id.as_deref()),
            enc(self.skip.as_deref())
        )
    }

    /// The token [`Token::encode`] made; `None` for anything else.
    pub fn decode(s: &str) -> Option<Token> {
        let dec = |f: &str| -> Option<Option<String>> {
            match f {
                "-" => Some(None),
                f => {
                    let v = f.strip_prefix('=')?;
                    Some(Some(percent_decode_str(v).decode_utf8().ok()?.into_owned()))
                }
            }
        };
        let mut fields = s.split(' ');
        let key = dec(fields.next()?)??;
        let version_id = dec(fields.next()?)?;
        let skip = dec(fields.next()?)?;
        fields.next().is_none().then_some(Token {
            marker: VersionMarker { key, version_id },
            skip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn version(key: &str, id: &str, secs: u64) -> VersionEntry {
        VersionEntry {
            key: key.into(),
            version_id: id.into(),
            last_modified: at(secs),
            size: secs,
            etag: format!("\"{id}\""),
            storage_class: None,
            is_latest: false,
            is_delete_marker: false,
        }
    }

    fn marker(key: &str, id: &str, secs: u64) -> VersionEntry {
        VersionEntry {
            is_delete_marker: true,
            size: 0,
            etag: String::new(),
            ..version(key, id, secs)
        }
    }

    fn shown(f: &Filtered) -> Vec<(&str, Option<&str>)> {
        f.chosen
            .iter()
            .map(|c| {
                (
                    c.key.as_str(),
                    c.version.as_ref().map(|v| v.version_id.as_str()),
                )
            })
            .collect()
    }

    #[test]
    fn each_key_at_its_newest_version_not_after_the_time() {
        // The listing splits versions and delete markers; the order given does not matter.
        let entries = vec![
            version("a", "a3", 30),
            version("b", "b1", 10),
            version("a", "a1", 10),
            marker("b", "b2", 20),
            version("a", "a2", 20),
            version("c", "c1", 25),
            marker("d", "d2", 15),
            version("d", "d1", 5),
        ];
        let f = choose(entries.clone(), None, at(20), true);
        assert_eq!(
            shown(&f),
            [("a", Some("a2")), ("b", None), ("c", None), ("d", None)],
            "a at a2 (a3 is later), b deleted at 20, c not yet written, d deleted at 15"
        );
        // The same instant is "not after": a version written exactly at TIME is shown.
        let f = choose(entries.clone(), None, at(19), true);
        assert_eq!(
            shown(&f),
            [
                ("a", Some("a1")),
                ("b", Some("b1")),
                ("c", None),
                ("d", None)
            ]
        );
        let f = choose(entries, None, at(4), true);
        assert!(f.chosen.iter().all(|c| c.version.is_none()), "{f:?}");
    }

    #[test]
    fn a_delete_marker_at_time_hides_the_key_and_a_later_one_does_not() {
        let entries = vec![
            version("k", "v1", 10),
            marker("k", "m", 20),
            version("k", "v2", 30),
        ];
        assert_eq!(
            shown(&choose(entries.clone(), None, at(15), true)),
            [("k", Some("v1"))]
        );
        assert_eq!(
            shown(&choose(entries.clone(), None, at(25), true)),
            [("k", None)]
        );
        assert_eq!(
            shown(&choose(entries, None, at(35), true)),
            [("k", Some("v2"))]
        );
    }

    #[test]
    fn a_key_cut_by_the_page_end_is_settled_or_left_open() {
        // Page 1 ends inside "k": its versions seen are newer than TIME, so k stays open.
        let page1 = vec![
            version("j", "j1", 1),
            version("k", "k3", 30),
            version("k", "k2", 20),
        ];
        let f = choose(page1, None, at(15), false);
        assert_eq!(shown(&f), [("j", Some("j1"))]);
        assert_eq!(f.settled_last, None);
        // Page 2 continues k with older versions, which decide it.
        let page2 = vec![version("k", "k1", 10), version("l", "l1", 1)];
        let f = choose(page2, None, at(15), true);
        assert_eq!(shown(&f), [("k", Some("k1")), ("l", Some("l1"))]);

        // Settled on page 1: its older versions on page 2 are skipped, not shown again.
        let page1 = vec![version("k", "k3", 30), version("k", "k2", 20)];
        let f = choose(page1, None, at(25), false);
        assert_eq!(shown(&f), [("k", Some("k2"))]);
        assert_eq!(f.settled_last.as_deref(), Some("k"));
        let page2 = vec![version("k", "k1", 10), version("l", "l1", 1)];
        let f = choose(page2, Some("k"), at(25), true);
        assert_eq!(shown(&f), [("l", Some("l1"))]);
        // A page that holds only more of a skipped key keeps skipping it.
        let f = choose(vec![version("k", "k0", 5)], Some("k"), at(25), false);
        assert_eq!((f.chosen.len(), f.settled_last.as_deref()), (0, Some("k")));
        // On the last page, a key with nothing at or before TIME is absent.
        let f = choose(vec![version("k", "k3", 30)], None, at(25), true);
        assert_eq!(shown(&f), [("k", None)]);
    }

    #[test]
    fn tokens_round_trip_any_key() {
        for key in [
            "a",
            "dir/with space/é",
            "x y z",
            "-",
            "=",
            "%2F",
            "new\nline",
        ] {
            for version_id in [None, Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".to_string())] {
                for skip in [None, Some(key.to_string())] {
                    let t = Token {
                        marker: VersionMarker {
                            key: key.to_string(),
                            version_id: version_id.clone(),
                        },
                        skip,
                    };
                    assert_eq!(Token::decode(&t.encode()), Some(t.clone()), "{t:?}");
                }
            }
        }
        assert_eq!(Token::decode("an ordinary token"), None);
        assert_eq!(Token::decode("- - -"), None, "a marker needs a key");
    }
}
