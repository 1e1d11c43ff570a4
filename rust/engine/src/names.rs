//! Names as fleets write them (methodology section 10): `[aliases.models]`,
//! `[aliases.hardware]` and `[aliases.sites]` map a raw name to a pack name.
//!
//! Resolution of one raw name, done once per distinct name (the kernel caches the result per
//! worker): a name the pack defines is used as is; else an exact alias key; else the longest
//! matching glob pattern (`*` any run of characters, `?` one character; length in characters,
//! wildcards included); patterns of equal length are tried in the order the pack lists them;
//! else the name stays as written (unknown to the pack). A site that looks like a URL
//! (LiteLLM logs `api_base`, OTel `server.address` can be `host:port`) is tried whole, then by
//! its host.

use crate::config::Config;
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// Which field a name came from. Each kind resolves against its own pack table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameKind {
    Model = 0,
    Site,
    Zone,
    Hardware,
}

impl NameKind {
    pub fn name(self) -> &'static str {
        match self {
            NameKind::Model => "model",
            NameKind::Site => "site",
            NameKind::Zone => "zone",
            NameKind::Hardware => "hardware",
        }
    }
}

/// One kind's alias table, compiled.
#[derive(Debug, Clone, Default)]
pub struct AliasTable {
    exact: FxHashMap<String, String>,
    /// (pattern as chars, target), longest first; equal lengths keep the pack's order.
    globs: Vec<(Vec<char>, String)>,
}

impl AliasTable {
    pub fn new(entries: &[(String, String)]) -> Self {
        let mut t = AliasTable::default();
        for (raw, target) in entries {
            if raw.contains(['*', '?']) {
                t.globs.push((raw.chars().collect(), target.clone()));
            } else {
                t.exact.insert(raw.clone(), target.clone());
            }
        }
        // Stable: among patterns of equal length the one listed first stays first.
        t.globs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        t
    }

    /// The pack name an alias gives `raw`, if any (exact key first, then the longest pattern).
    pub fn get(&self, raw: &str) -> Option<&str> {
        if let Some(t) = self.exact.get(raw) {
            return Some(t);
        }
        if self.globs.is_empty() {
            return None;
        }
        let s: Vec<char> = raw.chars().collect();
        self.globs.iter().find(|(p, _)| glob_match(p, &s)).map(|(_, t)| t.as_str())
    }
}

/// `*` matches any run of characters (`/` included: model ids carry provider prefixes),
/// `?` exactly one. Iterative with one backtrack point: linear in practice.
pub fn glob_match(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The host of a URL-looking site (`http://gpu-1.example:8000/v1` -> `gpu-1.example`), or of
/// a `host:port` address; None for a plain name.
pub fn url_host(raw: &str) -> Option<String> {
    let rest = match raw.find("://") {
        Some(i) => &raw[i + 3..],
        None => {
            // `host:port` (OTel server.address + server.port written together).
            let (h, port) = raw.rsplit_once(':')?;
            if h.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || h.contains(':') {
                return None;
            }
            return Some(h.to_ascii_lowercase());
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The compiled alias tables of a pack, and what each kind resolves against.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    models: AliasTable,
    hardware: AliasTable,
    sites: AliasTable,
}

impl Resolver {
    pub fn new(c: &Config) -> Self {
        Resolver {
            models: AliasTable::new(&c.aliases.models),
            hardware: AliasTable::new(&c.aliases.hardware),
            sites: AliasTable::new(&c.aliases.sites),
        }
    }

    /// The pack name of a model, hardware or site as a log writes it; `raw` when nothing
    /// applies. Zones are resolved against the grid by the kernel, not here.
    pub fn resolve<'a>(&'a self, c: &Config, kind: NameKind, raw: &'a str) -> Cow<'a, str> {
        let (table, known): (&AliasTable, &dyn Fn(&str) -> bool) = match kind {
            NameKind::Model => (&self.models, &|n| c.models.contains_key(n)),
            NameKind::Hardware => (&self.hardware, &|n| c.hardware.contains_key(n)),
            NameKind::Site => (&self.sites, &|n| c.sites.contains_key(n)),
            NameKind::Zone => return Cow::Borrowed(raw),
        };
        if known(raw) {
            return Cow::Borrowed(raw);
        }
        if let Some(t) = table.get(raw) {
            return Cow::Borrowed(t);
        }
        if kind == NameKind::Site {
            if let Some(host) = url_host(raw) {
                if known(&host) {
                    return Cow::Owned(host);
                }
                if let Some(t) = table.get(&host) {
                    return Cow::Borrowed(t);
                }
            }
        }
        Cow::Borrowed(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        glob_match(&p.chars().collect::<Vec<_>>(), &s.chars().collect::<Vec<_>>())
    }

    #[test]
    fn globs() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at all"));
        assert!(m("hosted_vllm/*", "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct"));
        assert!(!m("hosted_vllm/*", "openai/gpt"));
        assert!(m("*Llama-3.1-8B*", "meta-llama/Meta-Llama-3.1-8B-Instruct"));
        assert!(!m("*Llama-3.1-8B*", "meta-llama/Meta-Llama-3.1-70B-Instruct"));
        assert!(m("a?c", "abc") && !m("a?c", "ac") && !m("a?c", "abbc"));
        assert!(m("a*b*c", "axxbyyc") && !m("a*b*c", "axxbyy"));
        assert!(m("NVIDIA A100*40GB", "NVIDIA A100-SXM4-40GB") && !m("NVIDIA A100*40GB", "NVIDIA A100-SXM4-80GB"));
        assert!(m("é?", "éß"));
        assert!(!m("abc", "abcd") && !m("abcd", "abc"));
    }

    #[test]
    fn exact_then_longest_then_listed_first() {
        let t = AliasTable::new(&[
            ("*8B*".into(), "short".into()),
            ("*Llama-3.1-8B*".into(), "long".into()),
            ("*-8B-*".into(), "first-of-six".into()),
            ("*8B-I*".into(), "second-of-six".into()),
            ("meta-llama/Llama-3.1-8B".into(), "exact".into()),
        ]);
        assert_eq!(t.get("meta-llama/Llama-3.1-8B"), Some("exact"));
        assert_eq!(t.get("x/Llama-3.1-8B-Instruct"), Some("long"));
        // Both six-character patterns match: the one listed first wins.
        assert_eq!(t.get("x-8B-Instruct"), Some("first-of-six"));
        assert_eq!(t.get("x8B-Instruct"), Some("second-of-six"));
        assert_eq!(t.get("q8Bq"), Some("short"));
        assert_eq!(t.get("nothing"), None);
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("http://gpu-1.example:8000/v1").as_deref(), Some("gpu-1.example"));
        assert_eq!(url_host("https://user:pw@Fra-1.Example.com/v1?x=1").as_deref(), Some("fra-1.example.com"));
        assert_eq!(url_host("http://[::1]:8000/v1").as_deref(), Some("::1"));
        assert_eq!(url_host("fra-1:8000").as_deref(), Some("fra-1"));
        assert_eq!(url_host("fra-1"), None);
        assert_eq!(url_host("a:b:1"), None);
        assert_eq!(url_host("http:///nohost"), None);
    }

    #[test]
    fn resolution_per_kind() {
        let c = Config::from_toml(
            r#"
[hardware.h100]
tdp_w = 700
[models.llama]
[sites.fra]
[sites."gpu.example"]
[aliases.models]
"openai/*" = "llama"
"h100" = "llama"
[aliases.hardware]
"NVIDIA H100*" = "h100"
[aliases.sites]
"10.0.0.*" = "fra"
"#,
            "t.toml",
        )
        .unwrap();
        let r = Resolver::new(&c);
        let res = |k, s| r.resolve(&c, k, s).into_owned();
        assert_eq!(res(NameKind::Model, "llama"), "llama");
        assert_eq!(res(NameKind::Model, "openai/x"), "llama");
        // Per kind: "h100" is a model alias, not a hardware one, and vice versa.
        assert_eq!(res(NameKind::Model, "h100"), "llama");
        assert_eq!(res(NameKind::Hardware, "h100"), "h100");
        assert_eq!(res(NameKind::Hardware, "NVIDIA H100 80GB HBM3"), "h100");
        assert_eq!(res(NameKind::Model, "NVIDIA H100 80GB HBM3"), "NVIDIA H100 80GB HBM3");
        assert_eq!(res(NameKind::Site, "http://10.0.0.7:4000/v1"), "fra");
        assert_eq!(res(NameKind::Site, "https://GPU.example/v1"), "gpu.example");
        assert_eq!(res(NameKind::Site, "http://elsewhere:1/"), "http://elsewhere:1/");
        assert_eq!(res(NameKind::Zone, "openai/x"), "openai/x");
    }
}
