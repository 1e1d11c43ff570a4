//! Logs in object storage: `s3://`, `gs://`, `az://` and `http(s)://` inputs.
//!
//! An input URL is expanded here into objects (one object, every log object under a prefix, or
//! the keys a glob matches), each with the size, ETag and modification time the listing gave.
//! Those are the object's identity for the run: every later read asks for that ETag
//! (`If-Match`), so an object replaced while it is read fails the run instead of mixing two
//! versions, and only the first `size` bytes are ever asked for.
//!
//! Reading is ranged: a text log is read as consecutive [`RANGE_BYTES`] ranges with
//! [`READ_AHEAD`] of them in flight at once ([`RemoteRead`]); a Parquet file reads its footer,
//! then per row group only the column chunks the mapping needs ([`fetch_row_group`]). Nothing is
//! downloaded to a temporary file. The requests run on one small tokio runtime shared by the
//! process; the engine's own threads block on them.
//!
//! Credentials, region and endpoint come from the environment the way the `object_store` crate
//! reads it (`AWS_*`, `GOOGLE_*`, `AZURE_*`), then from the caller's storage options
//! (`--storage-option key=value`, the crate's configuration key names), which win.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read};
use std::ops::Range;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, ObjectStoreScheme,
    RetryConfig,
};
use url::Url;

use crate::error::{Error, Result};

/// Size of one ranged read of a text log. Large enough that request latency is amortised
/// (about 80 ms at 100 MB/s), small enough that [`READ_AHEAD`] of them stay modest in memory.
pub const RANGE_BYTES: u64 = 8 << 20;

/// Ranged reads of one text log in flight at once: the stream's throughput is about this many
/// times a single connection's, and its memory at most this many ranges (32 MiB).
pub const READ_AHEAD: usize = 4;

/// Ranges of one request for a Parquet row group closer than this are fetched as one: a request
/// costs a round trip, a few hundred KiB of unwanted bytes cost less.
const COALESCE_GAP: u64 = 1 << 20;

/// The most bytes of one remote Parquet row group's column chunks held in memory at once (each
/// worker holds the row group it decodes). Writers' row groups are far smaller (Spark and
/// parquet-mr aim at 128 MiB before compression); a file claiming more is refused with what to
/// do rather than taking memory without bound.
pub const ROW_GROUP_FETCH_LIMIT: u64 = 512 << 20;

/// Bytes read from the end of a Parquet file first: the footer and, for almost every file, the
/// whole metadata in one request.
const FOOTER_GUESS: u64 = 64 << 10;

/// URL schemes read from object storage (the rest of what the user types is a local path).
const SCHEMES: [&str; 10] = ["s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https"];

/// Whether an input is a URL of object storage rather than a local path.
pub fn is_url(input: &str) -> bool {
    input.split_once("://").is_some_and(|(scheme, _)| SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)))
}

/// The process's runtime for object storage requests, started on first use. Two workers: the
/// requests are I/O, and the engine's threads do the parsing.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wattledger-io")
            .enable_all()
            .build()
            .expect("cannot start the object storage runtime")
    })
}

/// `key=value` settings for the object store clients (`--storage-option`), checked when given:
/// a key no client knows is a typo that would otherwise be ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageOptions(Vec<(String, String)>);

impl StorageOptions {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut out = Vec::new();
        for (k, v) in pairs {
            let key = k.trim().to_ascii_lowercase();
            let known = AmazonS3ConfigKey::from_str(&key).is_ok()
                || GoogleConfigKey::from_str(&key).is_ok()
                || AzureConfigKey::from_str(&key).is_ok()
                || ClientConfigKey::from_str(&key).is_ok();
            if !known {
                return Err(Error::Usage(format!(
                    "--storage-option {k}: not a setting of the S3, GCS, Azure or HTTP clients (e.g. aws_endpoint, \
                     aws_region, aws_allow_http, google_service_account, azure_storage_account_name, allow_http, \
                     timeout; see docs/object-storage.md)"
                )));
            }
            out.push((key, v));
        }
        Ok(StorageOptions(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Few retries over a short time: a wrong endpoint must fail the run in seconds, not after the
/// crate's default three minutes. Transient errors of a healthy store are still retried.
fn retry() -> RetryConfig {
    RetryConfig { backoff: BackoffConfig::default(), max_retries: 3, retry_timeout: Duration::from_secs(20) }
}

fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

/// The client for `url`'s bucket (or host), configured from the environment and `opts`.
fn build_store(url: &Url, scheme: &ObjectStoreScheme, opts: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    let shown = display_url(url);
    let bad = |e: object_store::Error| Error::input(&shown, format!("cannot set up the client: {}", one_line(&e)));
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env().with_url(url.as_str()).with_retry(retry());
            for (k, v) in &opts.0 {
                if let Ok(key) = AmazonS3ConfigKey::from_str(k) {
                    b = b.with_config(key, v);
                }
            }
            let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint).unwrap_or_default();
            let allow = b.get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp));
            if endpoint.to_ascii_lowercase().starts_with("http://") && !truthy(allow.as_deref()) {
                return Err(Error::input(
                    &shown,
                    format!(
                        "the S3 endpoint {endpoint} is plain http; set AWS_ALLOW_HTTP=true (or --storage-option \
                         aws_allow_http=true) to allow unencrypted requests"
                    ),
                ));
            }
            Arc::new(b.build().map_err(bad)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str()).with_retry(retry());
            for (k, v) in &opts.0 {
                if let Ok(key) = GoogleConfigKey::from_str(k) {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(b.build().map_err(bad)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str()).with_retry(retry());
            for (k, v) in &opts.0 {
                if let Ok(key) = AzureConfigKey::from_str(k) {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(b.build().map_err(bad)?)
        }
        ObjectStoreScheme::Http => {
            let base = &url[..url::Position::BeforePath];
            let mut b = HttpBuilder::new().with_url(base).with_retry(retry());
            // The user typed an http:// URL: that is the consent AWS_ALLOW_HTTP gives for an
            // endpoint set elsewhere (in the environment).
            if url.scheme().eq_ignore_ascii_case("http") {
                b = b.with_config(ClientConfigKey::AllowHttp, "true");
            }
            for (k, v) in &opts.0 {
                if let Ok(key) = ClientConfigKey::from_str(k) {
                    b = b.with_config(key, v);
                }
            }
            Arc::new(b.build().map_err(bad)?)
        }
        ObjectStoreScheme::Local | ObjectStoreScheme::Memory => {
            return Err(Error::input(&shown, "not an object storage URL"));
        }
        _ => return Err(Error::input(&shown, "this kind of URL is not supported")),
    };
    Ok(store)
}

/// The URL as the user sees it, without credentials a URL may carry (`https://user:pw@host`).
fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// One object to read: where it is and what it was when listed.
pub struct RemoteObject {
    /// `scheme://bucket/key` (`http(s)://host/path`): the object's name in messages, rejects
    /// and the ledger.
    pub url: String,
    pub size: u64,
    /// The store's entity tag when listed (quotes kept, as the store sent it); None when the
    /// store gave none.
    pub etag: Option<String>,
    /// Last modification, microseconds since the Unix epoch (UTC).
    pub modified_us: i64,
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
}

impl fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteObject")
            .field("url", &self.url)
            .field("size", &self.size)
            .field("etag", &self.etag)
            .finish()
    }
}

impl PartialEq for RemoteObject {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.size == other.size && self.etag == other.etag
    }
}

impl RemoteObject {
    fn new(store: &Arc<dyn ObjectStore>, base: &str, meta: ObjectMeta) -> Self {
        RemoteObject {
            url: format!("{base}/{}", meta.location),
            size: meta.size,
            etag: meta.e_tag,
            modified_us: meta.last_modified.timestamp_micros(),
            store: store.clone(),
            location: meta.location,
        }
    }

    /// The request for `range`, pinned to the listed version: a weak ETag (`W/"..."`) does not
    /// promise the same bytes, so it is not asked for.
    fn get(
        &self,
        range: Range<u64>,
    ) -> impl std::future::Future<Output = object_store::Result<Bytes>> + Send + 'static {
        let store = self.store.clone();
        let location = self.location.clone();
        let if_match = self.etag.clone().filter(|e| !e.starts_with("W/"));
        async move {
            let opts = GetOptions { if_match, range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
            store.get_opts(&location, opts).await?.bytes().await
        }
    }

    /// Bytes `range` of the object, checked to be exactly that many.
    pub fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        let got = runtime().block_on(self.get(range.clone())).map_err(|e| self.error(&e))?;
        self.check_len(&range, &got).map_err(|m| Error::input(&self.url, m))?;
        Ok(got)
    }

    /// Several ranges at once: ranges less than [`COALESCE_GAP`] apart are fetched as one
    /// request (a row group's column chunks are usually back to back), the requests in parallel.
    pub fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let merged = coalesce(ranges);
        let fetched = self.fetch_all(&merged)?;
        Ok(ranges
            .iter()
            .map(|r| {
                let i =
                    merged.iter().position(|m| m.start <= r.start && r.end <= m.end).expect("a range is in its merge");
                let m = &merged[i];
                fetched[i].slice((r.start - m.start) as usize..(r.end - m.start) as usize)
            })
            .collect())
    }

    fn fetch_all(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let futs: Vec<_> = ranges.iter().map(|r| self.get(r.clone())).collect();
        let got = runtime().block_on(async move {
            let handles: Vec<_> = futs.into_iter().map(|f| tokio::spawn(f)).collect();
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                out.push(h.await.map_err(|e| object_store::Error::JoinError { source: e })??);
            }
            Ok::<_, object_store::Error>(out)
        });
        let got = got.map_err(|e| self.error(&e))?;
        for (r, b) in ranges.iter().zip(&got) {
            self.check_len(r, b).map_err(|m| Error::input(&self.url, m))?;
        }
        Ok(got)
    }

    /// The store must give exactly the bytes asked for; fewer means the object is not the one
    /// listed any more (a store that ignores `If-Match`).
    fn check_len(&self, range: &Range<u64>, got: &Bytes) -> std::result::Result<(), String> {
        let want = range.end - range.start;
        if got.len() as u64 != want {
            return Err(format!(
                "the store returned {} bytes for bytes {}..{} of an object of {} bytes: it changed while being read; \
                 run again",
                got.len(),
                range.start,
                range.end,
                self.size
            ));
        }
        Ok(())
    }

    fn error(&self, e: &object_store::Error) -> Error {
        Error::input(&self.url, message(e))
    }
}

fn describe(url: &str, e: &object_store::Error) -> Error {
    Error::input(url, message(e))
}

/// `ranges` sorted and merged where they overlap or lie less than [`COALESCE_GAP`] apart.
fn coalesce(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(COALESCE_GAP) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// One line for an object store error, with what to do.
pub(crate) fn message(e: &object_store::Error) -> String {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => "no such object (or bucket)".to_string(),
        E::Precondition { .. } => {
            "the object changed while being read (its ETag is not the one listed); run again".to_string()
        }
        E::Unauthenticated { .. } => format!(
            "not authenticated: check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY, or --storage-option): {}",
            one_line(e)
        ),
        E::PermissionDenied { .. } => format!(
            "access denied: check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY, or --storage-option) and the \
             bucket's permissions: {}",
            one_line(e)
        ),
        _ => {
            let text = one_line(e);
            // A 403 from S3 arrives as a generic error on some paths (a signature mismatch).
            if text.contains("SignatureDoesNotMatch") || text.contains("InvalidAccessKeyId") || text.contains("403") {
                format!(
                    "access denied: check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                     --storage-option): {text}"
                )
            } else {
                format!(
                    "cannot read from the store (check the endpoint, e.g. AWS_ENDPOINT_URL, and the network): {text}"
                )
            }
        }
    }
}

/// The error and its causes on one line (the crate nests them), a store's XML error body cut to
/// its code and message.
fn one_line(e: &dyn std::error::Error) -> String {
    compact_xml(&chain(e))
}

/// `... 403 Forbidden: <?xml ...><Error><Code>C</Code><Message>M</Message>...` ->
/// `... 403 Forbidden: C: M`: S3 and Azure answer errors with an XML document whose code and
/// message are all a person needs.
fn compact_xml(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_string();
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let from = text[start..].find(&open)? + start + open.len();
        let to = text[from..].find(&format!("</{name}>"))? + from;
        Some(text[from..to].trim().to_string())
    };
    let head = text[..start].trim_end();
    match (tag("Code"), tag("Message")) {
        (Some(c), Some(m)) => format!("{head} {c}: {m}"),
        (Some(c), None) => format!("{head} {c}"),
        _ => text.to_string(),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cause = c.source();
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Clients by (scheme, bucket or host): the objects of one bucket share one connection pool.
#[derive(Default)]
pub struct Stores {
    opts: StorageOptions,
    clients: HashMap<String, Arc<dyn ObjectStore>>,
}

impl Stores {
    pub fn new(opts: StorageOptions) -> Self {
        Stores { opts, clients: HashMap::new() }
    }

    fn client(&mut self, url: &Url, scheme: &ObjectStoreScheme) -> Result<Arc<dyn ObjectStore>> {
        let key = url[..url::Position::BeforePath].to_string();
        if let Some(c) = self.clients.get(&key) {
            return Ok(c.clone());
        }
        let c = build_store(url, scheme, &self.opts)?;
        self.clients.insert(key, c.clone());
        Ok(c)
    }

    /// The objects behind one input URL, sorted by key: the object itself; every log object
    /// under it when it is a prefix (ends with `/`, or names no object); the keys a glob
    /// matches. `is_log` picks log objects by name (as a directory walk does); hidden names
    /// (a segment starting with `.`) are skipped like hidden files.
    pub fn expand(
        &mut self,
        input: &str,
        is_log: &dyn Fn(&str) -> bool,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<Arc<RemoteObject>>> {
        let url = Url::parse(input).map_err(|e| Error::input(input, format!("not a valid URL: {e}")))?;
        let shown = display_url(&url);
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::input(
                &shown,
                "URLs with a query or fragment (e.g. presigned URLs) are not supported; pass the object's plain URL \
                 and credentials through the environment or --storage-option",
            ));
        }
        let (scheme, _) = ObjectStoreScheme::parse(&url).map_err(|e| Error::input(&shown, e.to_string()))?;
        let store = self.client(&url, &scheme)?;
        let (key, base) = key_and_base(&url, &scheme, &shown)?;
        let http = matches!(scheme, ObjectStoreScheme::Http);
        let glob = key.contains(['*', '?', '[']);
        if http && (glob || key.is_empty() || key.ends_with('/')) {
            return Err(Error::input(
                &shown,
                "an http(s) URL names one object: list the files one by one (globs and directories need s3://, \
                 gs:// or az://)",
            ));
        }
        let found = if glob {
            let literal: Vec<&str> = key.split('/').take_while(|seg| !seg.contains(['*', '?', '['])).collect();
            let prefix = literal.join("/");
            let pattern =
                glob::Pattern::new(&key).map_err(|e| Error::input(&shown, format!("invalid glob pattern: {e}")))?;
            let options = glob::MatchOptions { require_literal_separator: true, ..glob::MatchOptions::new() };
            let listed = self.list(&store, &prefix, &shown, cancel)?;
            let matched: Vec<ObjectMeta> = listed
                .into_iter()
                .filter(|m| {
                    // A matched "directory" (a prefix) stands for every log object under it.
                    let k = m.location.as_ref();
                    ancestors(k).any(|a| pattern.matches_with(a, options))
                })
                .collect();
            let logs = pick_logs(matched, &prefix, is_log);
            if logs.is_empty() {
                return Err(Error::input(&shown, "glob matched no log objects"));
            }
            logs
        } else if key.is_empty() || key.ends_with('/') {
            let prefix = key.trim_end_matches('/').to_string();
            let logs = pick_logs(self.list(&store, &prefix, &shown, cancel)?, &prefix, is_log);
            if logs.is_empty() {
                return Err(Error::input(
                    &shown,
                    "no log objects under this prefix (.jsonl, .ndjson, .json, .csv, .parquet, optionally .gz or .zst)",
                ));
            }
            logs
        } else {
            let location =
                ObjectPath::parse(&key).map_err(|e| Error::input(&shown, format!("not a valid key: {e}")))?;
            match runtime().block_on(store.head(&location)) {
                Ok(meta) => vec![meta],
                Err(object_store::Error::NotFound { .. }) if !http => {
                    // `s3://bucket/logs/2026-11-28` is a prefix as much as a local directory is.
                    let logs = pick_logs(self.list(&store, &key, &shown, cancel)?, &key, is_log);
                    if logs.is_empty() {
                        return Err(Error::input(&shown, "no such object, and no log objects under it as a prefix"));
                    }
                    logs
                }
                Err(e) => return Err(describe(&shown, &e)),
            }
        };
        Ok(found.into_iter().map(|m| Arc::new(RemoteObject::new(&store, &base, m))).collect())
    }

    fn list(
        &self,
        store: &Arc<dyn ObjectStore>,
        prefix: &str,
        shown: &str,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<ObjectMeta>> {
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(ObjectPath::parse(prefix).map_err(|e| Error::input(shown, format!("not a valid prefix: {e}")))?)
        };
        let mut stream = store.list(prefix.as_ref());
        let mut out = Vec::new();
        loop {
            if cancel() {
                return Err(Error::Cancelled);
            }
            match runtime().block_on(stream.try_next()) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return Err(describe(shown, &e)),
            }
        }
        out.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
        Ok(out)
    }
}

/// The object key (or prefix, or glob) the URL names, percent-decoded, without the leading `/`,
/// and what a key is appended to for an object's URL (`s3://bucket`, `https://host:port`).
fn key_and_base(url: &Url, scheme: &ObjectStoreScheme, shown: &str) -> Result<(String, String)> {
    let host = url.host_str().ok_or_else(|| Error::input(shown, "the URL names no bucket or host"))?;
    let decoded = percent_decode(url.path()).map_err(|m| Error::input(shown, m))?;
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let is_http_url = url.scheme().eq_ignore_ascii_case("http") || url.scheme().eq_ignore_ascii_case("https");
    if matches!(scheme, ObjectStoreScheme::Http) || !is_http_url {
        // s3://bucket/key, gs://bucket/key, az://container/key, abfss://container@account/key.
        let user = if url.username().is_empty() { String::new() } else { format!("{}@", url.username()) };
        let base = if matches!(scheme, ObjectStoreScheme::Http) {
            format!("{}://{authority}", url.scheme())
        } else {
            format!("{}://{user}{authority}", url.scheme())
        };
        return Ok((decoded.trim_start_matches('/').to_string(), base));
    }
    // https://bucket.s3.region.amazonaws.com/key, https://account.blob.core.windows.net/container/key:
    // the crate's parser knows which part of the path is the key.
    let (_, path) = ObjectStoreScheme::parse(url).map_err(|e| Error::input(shown, e.to_string()))?;
    let mut key = path.to_string();
    if decoded.ends_with('/') && !key.is_empty() {
        key.push('/');
    }
    let stem = decoded.strip_suffix(key.as_str()).unwrap_or(&decoded).trim_end_matches('/');
    Ok((key, format!("{}://{authority}{stem}", url.scheme())))
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "the URL's path is not UTF-8 once percent-decoded".to_string())
}

/// `a/b/c.jsonl`, `a/b`, `a`: a key and its parent prefixes.
fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    let cuts = key.match_indices('/').map(|(i, _)| i).collect::<Vec<_>>();
    std::iter::once(key).chain(cuts.into_iter().rev().map(move |i| &key[..i]))
}

/// Log objects of a listing under `prefix`: a known log name, no hidden segment below the prefix.
fn pick_logs(listed: Vec<ObjectMeta>, prefix: &str, is_log: &dyn Fn(&str) -> bool) -> Vec<ObjectMeta> {
    listed
        .into_iter()
        .filter(|m| {
            let k = m.location.as_ref();
            let below = k.strip_prefix(prefix).unwrap_or(k);
            !below.split('/').any(|seg| seg.starts_with('.')) && is_log(k)
        })
        .collect()
}

/// A text log read front to back as ranged requests, [`READ_AHEAD`] in flight.
pub struct RemoteRead {
    obj: Arc<RemoteObject>,
    /// Start of the next range to ask for.
    next: u64,
    inflight: VecDeque<(Range<u64>, tokio::task::JoinHandle<object_store::Result<Bytes>>)>,
    current: Bytes,
}

impl RemoteRead {
    pub fn new(obj: Arc<RemoteObject>) -> Self {
        RemoteRead { obj, next: 0, inflight: VecDeque::new(), current: Bytes::new() }
    }

    fn top_up(&mut self) {
        while self.inflight.len() < READ_AHEAD && self.next < self.obj.size {
            let end = (self.next + RANGE_BYTES).min(self.obj.size);
            let range = self.next..end;
            let handle = runtime().spawn(self.obj.get(range.clone()));
            self.inflight.push_back((range, handle));
            self.next = end;
        }
    }
}

impl Read for RemoteRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            self.top_up();
            let Some((range, handle)) = self.inflight.pop_front() else {
                return Ok(0);
            };
            let got = runtime()
                .block_on(handle)
                .map_err(|e| object_store::Error::JoinError { source: e })
                .and_then(|r| r)
                .map_err(|e| io::Error::other(message(&e)))?;
            self.obj.check_len(&range, &got).map_err(io::Error::other)?;
            self.current = got;
            self.top_up();
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

impl Drop for RemoteRead {
    fn drop(&mut self) {
        // A run stopped half-way (an error, Ctrl-C) does not leave requests downloading.
        for (_, h) in self.inflight.drain(..) {
            h.abort();
        }
    }
}

/// Parts of a remote Parquet file held in memory, served to the Parquet reader as if they were
/// the file: the footer for the metadata, then one row group's column chunks. A read outside
/// them is a bug of the range planning, reported as such rather than fetched one page at a time.
pub struct Fetched {
    len: u64,
    parts: Vec<(u64, Bytes)>,
}

impl Fetched {
    fn find(&self, start: u64, len: u64) -> Option<Bytes> {
        self.parts.iter().find_map(|(s, b)| {
            let end = s + b.len() as u64;
            (start >= *s && start + len <= end).then(|| b.slice((start - s) as usize..(start - s + len) as usize))
        })
    }
}

impl parquet::file::reader::Length for Fetched {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for Fetched {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let part = self.parts.iter().find(|(s, b)| start >= *s && start < s + b.len() as u64);
        match part {
            Some((s, b)) => Ok(bytes::Buf::reader(b.slice((start - s) as usize..))),
            None => Err(parquet::errors::ParquetError::General(format!("byte {start} was not fetched"))),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.find(start, length as u64).ok_or_else(|| {
            parquet::errors::ParquetError::General(format!("bytes {start}..{} were not fetched", start + length as u64))
        })
    }
}

/// The end of a remote Parquet file holding its whole footer (metadata and the 8-byte tail):
/// one request when the metadata fits in [`FOOTER_GUESS`], two otherwise.
pub fn fetch_footer(obj: &RemoteObject) -> Result<Fetched> {
    let size = obj.size;
    if size < 12 {
        return Err(Error::input(&obj.url, "not a readable Parquet file: too small to hold a footer"));
    }
    let first = size.saturating_sub(FOOTER_GUESS);
    let tail = obj.read_range(first..size)?;
    let n = tail.len();
    if &tail[n - 4..] != b"PAR1" {
        return Err(Error::input(&obj.url, "not a readable Parquet file: no PAR1 magic at the end"));
    }
    let meta_len = u64::from(u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")));
    let need = meta_len + 8;
    if need > size {
        return Err(Error::input(
            &obj.url,
            "not a readable Parquet file: its footer claims more bytes than the file has",
        ));
    }
    let parts =
        if need <= n as u64 { vec![(first, tail)] } else { vec![(size - need, obj.read_range(size - need..size)?)] };
    Ok(Fetched { len: size, parts })
}

/// The byte ranges of row group `rg`'s column chunks the projection reads, fetched at once.
pub fn fetch_row_group(
    obj: &RemoteObject,
    meta: &parquet::file::metadata::ParquetMetaData,
    mask: &parquet::arrow::ProjectionMask,
    rg: usize,
) -> Result<Fetched> {
    fetch_row_group_within(obj, meta, mask, rg, ROW_GROUP_FETCH_LIMIT)
}

fn fetch_row_group_within(
    obj: &RemoteObject,
    meta: &parquet::file::metadata::ParquetMetaData,
    mask: &parquet::arrow::ProjectionMask,
    rg: usize,
    limit: u64,
) -> Result<Fetched> {
    let ranges: Vec<Range<u64>> = meta
        .row_group(rg)
        .columns()
        .iter()
        .enumerate()
        .filter(|(i, _)| mask.leaf_included(*i))
        .map(|(_, c)| {
            let (start, len) = c.byte_range();
            start..start + len
        })
        .collect();
    let bad = ranges.iter().find(|r| r.end > obj.size);
    if let Some(r) = bad {
        return Err(Error::input(
            &obj.url,
            format!(
                "corrupt Parquet metadata: row group {rg} claims bytes {}..{} of a {}-byte file",
                r.start, r.end, obj.size
            ),
        ));
    }
    let wanted: u64 = coalesce(&ranges).iter().map(|r| r.end - r.start).sum();
    if wanted > limit {
        return Err(Error::input(
            &obj.url,
            format!(
                "row group {rg} needs {} of column chunks in memory, more than the {} a row group read from \
                 object storage may take; rewrite the file with smaller row groups (e.g. 128 MiB) or copy it \
                 locally",
                crate::source::human_bytes_approx(wanted),
                crate::source::human_bytes(limit)
            ),
        ));
    }
    let got = obj.read_ranges(&ranges)?;
    Ok(Fetched { len: obj.size, parts: ranges.into_iter().map(|r| r.start).zip(got).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::PutPayload;

    fn put(store: &Arc<dyn ObjectStore>, key: &str, body: Vec<u8>) -> ObjectMeta {
        let p = ObjectPath::parse(key).unwrap();
        runtime().block_on(store.put(&p, PutPayload::from(body))).unwrap();
        runtime().block_on(store.head(&p)).unwrap()
    }

    #[test]
    fn urls_are_told_from_paths() {
        for u in [
            "s3://b/k.jsonl",
            "S3://b/",
            "gs://b/x",
            "az://c/x",
            "abfss://c@a.dfs.core.windows.net/x",
            "https://h/x.csv",
        ] {
            assert!(is_url(u), "{u}");
        }
        for p in ["logs/a.jsonl", "/abs/s3:/x", "c:\\x", "file:///x", "ftp://h/x", "s3:/b/k"] {
            assert!(!is_url(p), "{p}");
        }
    }

    #[test]
    fn unknown_storage_options_are_refused() {
        assert!(StorageOptions::new([("AWS_REGION".into(), "eu-west-1".into())]).is_ok());
        assert!(StorageOptions::new([("allow_http".into(), "true".into())]).is_ok());
        let e = StorageOptions::new([("aws_regoin".into(), "x".into())]).unwrap_err().to_string();
        assert!(e.contains("aws_regoin") && e.contains("not a setting"), "{e}");
    }

    /// Ranges are read in order across boundaries, with reads of any size, and the stream ends
    /// exactly at the listed size.
    #[test]
    fn ranged_reads_give_the_object_back() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let body: Vec<u8> = (0..(RANGE_BYTES as usize * 2 + 12345)).map(|i| (i % 251) as u8).collect();
        let meta = put(&store, "logs/a.jsonl", body.clone());
        let obj = Arc::new(RemoteObject::new(&store, "memory://", meta));
        let mut r = RemoteRead::new(obj.clone());
        let mut out = Vec::new();
        let mut buf = vec![0u8; 77_777];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out.len(), body.len());
        assert!(out == body);
        assert_eq!(&obj.read_range(10..20).unwrap()[..], &body[10..20]);
        // Out of order, overlapping, near (merged into one request) and far apart.
        let far = RANGE_BYTES * 2..RANGE_BYTES * 2 + 7;
        let asked = [100..110, 0..3, 105..120, far.clone()];
        let parts = obj.read_ranges(&asked).unwrap();
        for (r, got) in asked.iter().zip(&parts) {
            assert_eq!(&got[..], &body[r.start as usize..r.end as usize]);
        }
        assert_eq!(coalesce(&asked), [0..120, far]);
    }

    /// An object replaced after it was listed fails the read (its ETag no longer matches)
    /// instead of mixing two versions.
    #[test]
    fn an_object_replaced_while_read_is_an_error() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let meta = put(&store, "a.jsonl", b"{}\n".repeat(10));
        let obj = Arc::new(RemoteObject::new(&store, "memory://", meta));
        put(&store, "a.jsonl", b"[]\n".repeat(10));
        let e = obj.read_range(0..5).unwrap_err().to_string();
        assert!(e.contains("memory:///a.jsonl") && e.contains("changed while being read"), "{e}");
        let mut buf = [0u8; 8];
        let e = RemoteRead::new(obj).read(&mut buf).unwrap_err().to_string();
        assert!(e.contains("changed while being read"), "{e}");
    }

    #[test]
    fn prefixes_skip_hidden_and_unknown_names_and_globs_match_keys() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for k in [
            "logs/2026-11-27/a.jsonl",
            "logs/2026-11-28/b.jsonl",
            "logs/2026-11-28/c.csv",
            "logs/2026-11-28/x.txt",
            "logs/.tmp/d.jsonl",
            "logs/2026-11-28/.e.jsonl",
            "other/f.jsonl",
        ] {
            put(&store, k, b"{}\n".to_vec());
        }
        let is_log = |k: &str| crate::source::detect_format(std::path::Path::new(k)).is_some();
        let s = Stores::default();
        let keys = |v: Vec<ObjectMeta>| v.into_iter().map(|m| m.location.to_string()).collect::<Vec<_>>();
        let listed = s.list(&store, "logs", "memory:///logs", &|| false).unwrap();
        assert_eq!(
            keys(pick_logs(listed, "logs", &is_log)),
            ["logs/2026-11-27/a.jsonl", "logs/2026-11-28/b.jsonl", "logs/2026-11-28/c.csv"]
        );
        let pattern = glob::Pattern::new("logs/2026-11-2*/*.jsonl").unwrap();
        let options = glob::MatchOptions { require_literal_separator: true, ..glob::MatchOptions::new() };
        let listed = s.list(&store, "logs", "memory:///logs", &|| false).unwrap();
        let matched: Vec<_> = listed
            .into_iter()
            .filter(|m| ancestors(m.location.as_ref()).any(|a| pattern.matches_with(a, options)))
            .collect();
        assert_eq!(keys(pick_logs(matched, "logs", &is_log)), ["logs/2026-11-27/a.jsonl", "logs/2026-11-28/b.jsonl"]);
        assert!(s.list(&store, "", "memory:///", &|| true).is_err(), "Ctrl-C stops a listing");
    }

    /// A Parquet object read as the engine reads it remotely: the footer, then one row group's
    /// projected column chunks from memory, gives the rows back; a row group over the memory
    /// limit is refused with what to do.
    #[test]
    fn parquet_row_groups_come_from_fetched_column_chunks() {
        use arrow_array::{Int64Array, RecordBatch, StringArray};
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
        use parquet::arrow::{ArrowWriter, ProjectionMask};

        let n = 10_000i64;
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Int64Array::from_iter_values(0..n)) as _),
            ("b", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("x{i}")))) as _),
            ("c", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i * 3))) as _),
        ])
        .unwrap();
        let props =
            parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(4096)).build();
        let mut body = Vec::new();
        let mut w = ArrowWriter::try_new(&mut body, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let obj = RemoteObject::new(&store, "memory://", put(&store, "t.parquet", body));

        let meta = ArrowReaderMetadata::load(&fetch_footer(&obj).unwrap(), ArrowReaderOptions::new()).unwrap();
        assert_eq!(meta.metadata().num_row_groups(), 3);
        let mask = ProjectionMask::roots(meta.parquet_schema(), [0, 2]);
        let mut a_sum = 0i64;
        let mut rows = 0;
        for rg in 0..3 {
            let chunks = fetch_row_group(&obj, meta.metadata(), &mask, rg).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, meta.clone())
                .with_row_groups(vec![rg])
                .with_projection(mask.clone())
                .build()
                .unwrap();
            for b in reader {
                let b = b.unwrap();
                assert_eq!(b.num_columns(), 2);
                let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                let c = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
                assert!(a.iter().zip(c.iter()).all(|(a, c)| c.unwrap() == a.unwrap() * 3));
                a_sum += a.iter().map(|v| v.unwrap()).sum::<i64>();
                rows += b.num_rows();
            }
        }
        assert_eq!((rows as i64, a_sum), (n, n * (n - 1) / 2));
        let e = fetch_row_group_within(&obj, meta.metadata(), &mask, 0, 100).err().unwrap().to_string();
        assert!(e.contains("row group 0 needs") && e.contains("smaller row groups"), "{e}");
        let e =
            fetch_footer(&RemoteObject::new(&store, "memory://", put(&store, "x.parquet", b"not parquet".repeat(3))))
                .err()
                .unwrap()
                .to_string();
        assert!(e.contains("not a readable Parquet file"), "{e}");
    }

    #[test]
    fn xml_error_bodies_are_cut_to_code_and_message() {
        let t = "GET http://h/b?list-type=2 - 403 Forbidden: <?xml version=\"1.0\"?> <Error><Code>SignatureDoesNotMatch</Code>\
                 <Message>The signature does not match.</Message><RequestId>x</RequestId></Error>";
        assert_eq!(
            compact_xml(t),
            "GET http://h/b?list-type=2 - 403 Forbidden: SignatureDoesNotMatch: The signature does not match."
        );
        assert_eq!(compact_xml("connection refused"), "connection refused");
    }

    #[test]
    fn percent_decoding_and_ancestors() {
        assert_eq!(percent_decode("a%20b/c%2Fd").unwrap(), "a b/c/d");
        assert_eq!(percent_decode("100%").unwrap(), "100%");
        assert_eq!(ancestors("a/b/c.jsonl").collect::<Vec<_>>(), ["a/b/c.jsonl", "a/b", "a"]);
    }

    #[test]
    fn plain_http_endpoints_need_consent() {
        let url = Url::parse("s3://bucket/x.jsonl").unwrap();
        let opts = StorageOptions::new([("aws_endpoint".into(), "http://127.0.0.1:9".into())]).unwrap();
        let e = build_store(&url, &ObjectStoreScheme::AmazonS3, &opts).err().unwrap().to_string();
        assert!(e.contains("AWS_ALLOW_HTTP=true") && e.contains("s3://bucket/x.jsonl"), "{e}");
        let opts = StorageOptions::new([
            ("aws_endpoint".into(), "http://127.0.0.1:9".into()),
            ("aws_allow_http".into(), "true".into()),
            ("aws_region".into(), "us-east-1".into()),
        ])
        .unwrap();
        assert!(build_store(&url, &ObjectStoreScheme::AmazonS3, &opts).is_ok());
    }
}
