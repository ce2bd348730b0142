//! The ops console of `stxd run` (`[http]`), over real HTTP against the real
//! daemon on a free loopback port: token and CSRF refusals, health checks,
//! the metrics parsed by a Prometheus text parser and held against `stxd
//! status --json`, and a real headless Chromium driven through WebDriver
//! filling the mapping table until the parked files resume.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sshd::free_port;
use crate::util::{Daemon, Sandbox, rows};

/// An HTTP client that reports every status as is and follows no redirect,
/// with a new connection for each request: a request refused before its
/// body was read (a 401) ends its connection on the server's side, and a
/// pooled connection could be reused for the next POST before the client
/// saw it closed (which a browser retries, and ureq does not for a POST).
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections(0)
        .build()
        .into()
}

pub(crate) struct Console {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Console {
    /// The console of a daemon started on `sb` (the demo's `[http]`).
    pub(crate) fn of(sb: &Sandbox) -> Console {
        let token = std::fs::read_to_string(sb.path().join("var/state/console.token"))
            .expect("the console token stxd init writes");
        Console {
            base: format!("http://127.0.0.1:{}", sb.console_port()),
            token: token.trim().to_owned(),
            agent: agent(),
        }
    }

    /// GET with the bearer token (or `bearer`), its status and body.
    fn get_as(&self, path: &str, bearer: Option<&str>) -> (u16, String) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().expect("GET");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        self.get_as(path, Some(&self.token.clone()))
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> (u16, String) {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.send_form(form.iter().copied()).expect("POST");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    }
}

/// The CSRF token a page's forms carry.
fn csrf_in(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

/// The daemon of `sb`, once its console listens.
fn daemon_with_console(sb: &Sandbox) -> Daemon {
    let d = Daemon::start(sb);
    d.wait_log("console listening");
    d
}

/// The distributor's `parked/` folder of the demo link.
fn parked(sb: &Sandbox) -> PathBuf {
    sb.path()
        .join("var/exchange/opera-tourism/to-distributor/parked")
}

#[test]
fn every_page_but_healthz_needs_the_token_and_writes_need_the_csrf_token() {
    let sb = Sandbox::new();
    sb.ready();
    let d = daemon_with_console(&sb);
    let c = Console::of(&sb);
    assert_eq!(c.get_as("/healthz", None), (200, "ok\n".to_owned()));
    // Every page the router serves but /healthz and /login.
    for path in [
        "/",
        "/readyz",
        "/metrics",
        "/runs",
        "/runs/OPERA/1",
        "/files",
        "/reconcile/opera-tourism",
        "/mapping",
        "/mapping/export",
        "/sales",
        "/catalogue",
    ] {
        assert_eq!(c.get_as(path, None).0, 401, "{path} without a token");
        assert_eq!(
            c.get_as(path, Some("not-the-token-at-all")).0,
            401,
            "{path} with a wrong token"
        );
    }
    // Ready once the first listing is done (the log says so just before).
    let start = Instant::now();
    while c.get("/readyz").0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            c.get("/readyz")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.get("/readyz").1, "ready\n");
    let (status, page) = c.get("/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("opera-tourism"), "{page}");
    let csrf = csrf_in(&page);
    let bearer = format!("Bearer {}", c.token);
    let auth = [("Authorization", bearer.as_str())];
    let job = [("link", "opera-tourism"), ("job", "export-seatplan")];
    // A write with the token but without (or with a wrong) CSRF token.
    assert_eq!(c.post("/trigger", &auth, &job).0, 403);
    let wrong = [job[0], job[1], ("csrf", "0000")];
    assert_eq!(c.post("/trigger", &auth, &wrong).0, 403);
    // A write with a CSRF token but no token.
    let right = [job[0], job[1], ("csrf", csrf.as_str())];
    assert_eq!(c.post("/trigger", &[], &right).0, 401);
    // Every write, each with a whole form: 401 without the token, 403 with
    // it but without the CSRF token.
    let link = ("link", "opera-tourism");
    let writes: [(&str, Vec<(&str, &str)>); 8] = [
        (
            "/mapping/change",
            vec![
                link,
                ("kind", "seat_category"),
                ("manager_id", "2001"),
                ("action", "set"),
                ("local_code", "CAT1"),
            ],
        ),
        ("/mapping/import", vec![link, ("csv", "x")]),
        (
            "/sales/resolve",
            vec![
                link,
                ("line", "1"),
                ("decision", "dismiss"),
                ("reason", "r"),
            ],
        ),
        (
            "/catalogue/validate",
            vec![link, ("product", "1"), ("object", "product")],
        ),
        (
            "/catalogue/assign",
            vec![link, ("product", "1"), ("profile", "GUICHET")],
        ),
        (
            "/retry",
            vec![
                link,
                ("side", "manager"),
                ("folder", "error"),
                ("file", "x.stx"),
            ],
        ),
        ("/trigger", job.to_vec()),
        ("/logout", vec![]),
    ];
    for (path, form) in &writes {
        assert_eq!(c.post(path, &[], form).0, 401, "{path} without a token");
        assert_eq!(c.post(path, &auth, form).0, 403, "{path} without CSRF");
    }
    for store in ["OPERA.sqlite", "TOURISM.sqlite"] {
        assert!(
            rows(
                &sb,
                store,
                "SELECT kind FROM run WHERE kind LIKE 'console-%' OR kind LIKE 'mapping-%' \
                 OR kind LIKE 'catalogue-%' OR kind IN ('resolve-line', 'retry')"
            )
            .is_empty(),
            "a refused write recorded a run in {store}"
        );
    }
    // The login: a wrong token is refused, the right one gives a cookie
    // only the browser's own requests carry.
    assert_eq!(c.post("/login", &[], &[("token", "wrong")]).0, 401);
    let mut resp = c
        .agent
        .post(format!("{}/login", c.base))
        .send_form([("token", c.token.as_str())])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let _ = resp.body_mut().read_to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = [("Cookie", session.as_str())];
    let mut resp = c
        .agent
        .get(format!("{}/", c.base))
        .header("Cookie", &session)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let page = resp.body_mut().read_to_string().unwrap();
    let session_csrf = csrf_in(&page);
    assert_ne!(session_csrf, csrf, "a session has a CSRF token of its own");
    // The bearer's CSRF token is not the session's.
    assert_eq!(c.post("/trigger", &with_cookie, &right).0, 403);
    let (status, body) = c.post(
        "/trigger",
        &with_cookie,
        &[job[0], job[1], ("csrf", session_csrf.as_str())],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("export-seatplan of link opera-tourism queued"),
        "{body}"
    );
    // Queued like a trigger file: the daemon runs the export.
    crate::util::wait_for_file(&parked(&sb), "SEATPLAN", || d.log());
    let via = rows(
        &sb,
        "OPERA.sqlite",
        "SELECT r.kind, m.code, m.text FROM run r JOIN run_message m ON m.run = r.id WHERE m.code = 'via'",
    );
    assert_eq!(via, ["console-trigger|via|via console"]);
}

#[test]
fn metrics_parse_and_agree_with_status() {
    let sb = Sandbox::new();
    sb.ready();
    let d = daemon_with_console(&sb);
    // The seat plan goes out and parks at the distributor (mappings pending).
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    let parked = parked(&sb);
    crate::util::wait_for_file(&parked, "SEATPLAN", || d.log());
    let c = Console::of(&sb);
    let (status, text) = c.get("/metrics");
    assert_eq!(status, 200, "{text}");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a Prometheus text exposition");
    assert!(!scrape.samples.is_empty());
    for s in &scrape.samples {
        assert!(s.metric.starts_with("stxd_"), "{}", s.metric);
        if let prometheus_parse::Value::Counter(_) = s.value {
            assert!(s.metric.ends_with("_total"), "{}", s.metric);
        }
    }
    for name in [
        "stxd_apply_duration_seconds",
        "stxd_oldest_waiting_file_age_seconds",
        "stxd_start_time_seconds",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let value = |metric: &str, want: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    let status = sb.json(&["status"]);
    for l in status["links"].as_array().unwrap() {
        let (link, side) = (l["link"].as_str().unwrap(), l["side"].as_str().unwrap());
        for (folder, count) in [
            ("parked", l["parked"]["count"].as_u64().unwrap()),
            ("error", l["error"]["count"].as_u64().unwrap()),
            ("inbox", l["inbox"]["count"].as_u64().unwrap()),
            (
                "quarantine",
                l["quarantine"].as_array().unwrap().len() as u64,
            ),
        ] {
            assert_eq!(
                value(
                    "stxd_files_waiting",
                    &[("link", link), ("side", side), ("folder", folder)]
                ),
                Some(count as f64),
                "{link} {side} {folder}:\n{text}"
            );
        }
        if let Some(p) = l["pending_mappings"].as_u64() {
            assert!(p > 0, "the seat plan parked on pending mappings");
            assert_eq!(
                value("stxd_pending_mappings", &[("link", link)]),
                Some(p as f64)
            );
        }
    }
    // The seat plan published by the manager, counted from its journal.
    assert_eq!(
        value(
            "stxd_files_total",
            &[
                ("side", "manager"),
                ("kind", "seatplan"),
                ("direction", "out"),
                ("outcome", "published")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(
            "stxd_last_success_timestamp_seconds",
            &[("side", "manager"), ("run_kind", "export-seatplan")]
        )
        .is_some()
    );
    assert_eq!(value("stxd_ready", &[]), Some(1.0));
}

#[test]
fn metrics_counters_agree_with_status_after_the_first_use() {
    // The manual's first use, both ways: seat plan, catalogue, a
    // contingent, two sales and a refund booked at the manager.
    let sb = Sandbox::new();
    sb.contingent_applied();
    sb.sell("PARTERRE:A:1");
    let refunded = sb.sell("PARTERRE:A:2");
    sb.stxd(&["sale", "refund", &refunded.to_string()])
        .expect_code(0);
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    let _d = daemon_with_console(&sb);
    let c = Console::of(&sb);
    let (code, text) = c.get("/metrics");
    assert_eq!(code, 200, "{text}");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("a Prometheus text exposition");
    let status = sb.json(&["status"]);
    let mut compared = Vec::new();
    for l in status["links"].as_array().unwrap() {
        let (link, side) = (l["link"].as_str().unwrap(), l["side"].as_str().unwrap());
        for (field, direction, outcome) in [
            ("last_in", "in", "applied"),
            ("last_out", "out", "published"),
        ] {
            for last in l[field].as_array().unwrap() {
                let kind = last["kind"].as_str().unwrap().to_lowercase();
                let want = match last["file"]["sequence"].as_u64() {
                    // Each file went through once, in order, none refused:
                    // as many as the last sequence says.
                    Some(sequence) => {
                        assert_eq!(last["file"]["state"], outcome, "{last}");
                        Some(sequence as f64)
                    }
                    None => None,
                };
                assert_eq!(
                    sample(
                        &text,
                        "stxd_files_total",
                        &[
                            ("link", link),
                            ("side", side),
                            ("kind", &kind),
                            ("direction", direction),
                            ("outcome", outcome),
                        ]
                    ),
                    want,
                    "{link} {side} {kind} {direction}:\n{text}"
                );
                if want.is_some() {
                    compared.push(format!("{side} {direction} {kind}"));
                    assert!(
                        sample(
                            &text,
                            "stxd_last_success_timestamp_seconds",
                            &[
                                ("link", link),
                                ("side", side),
                                (
                                    "run_kind",
                                    &format!(
                                        "{}-{kind}",
                                        if direction == "in" {
                                            "import"
                                        } else {
                                            "export"
                                        }
                                    )
                                ),
                            ]
                        )
                        .is_some_and(|t| t > 0.0),
                        "{side} {direction} {kind}: no last success:\n{text}"
                    );
                }
            }
        }
        if let Some(p) = l["pending_mappings"].as_u64() {
            assert_eq!(
                sample(&text, "stxd_pending_mappings", &[("link", link)]),
                Some(p as f64)
            );
        }
    }
    compared.sort();
    assert_eq!(
        compared,
        [
            "distributor in catalogue",
            "distributor in contingent",
            "distributor in seatplan",
            "distributor out sales",
            "manager in sales",
            "manager out catalogue",
            "manager out contingent",
            "manager out seatplan",
        ]
    );
    // Every finished import of both stores in the duration histogram, and
    // each import in one bucket.
    let runs = sb.json(&["runs", "list", "--limit", "1000"]);
    let imports = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"].as_str().unwrap().starts_with("import-") && r["status"] != "running")
        .count();
    assert!(imports >= 4, "{runs}");
    let line = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
    };
    assert_eq!(
        line("stxd_apply_duration_seconds_count "),
        Some(imports as f64),
        "{text}"
    );
    assert_eq!(
        line("stxd_apply_duration_seconds_bucket{le=\"+Inf\"} "),
        Some(imports as f64),
        "{text}"
    );
    // The sales lines booked at the manager: two sales and a refund.
    assert_eq!(
        sample(
            &text,
            "stxd_sales_lines",
            &[("side", "manager"), ("status", "booked")]
        ),
        Some(3.0),
        "{text}"
    );
}

#[test]
fn nothing_listens_without_http_and_check_refuses_plain_http_beyond_loopback() {
    let sb = Sandbox::new();
    let config = sb.path().join("config/stxd.toml");
    let demo = std::fs::read_to_string(&config).unwrap();
    let port = sb.console_port();
    // Beyond loopback without TLS: refused, naming the key.
    let open = demo.replace(&format!("127.0.0.1:{port}"), &format!("0.0.0.0:{port}"));
    std::fs::write(&config, &open).unwrap();
    let run = sb.stxd(&["check"]);
    run.expect_code(2);
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        said.contains("http.listen") && said.contains("tls_cert"),
        "{said}"
    );
    // Said on purpose: accepted.
    std::fs::write(
        &config,
        open.replace(
            "# insecure_non_loopback = false",
            "insecure_non_loopback = true",
        ),
    )
    .unwrap();
    sb.ready();
    // No [http] table: the daemon starts and nothing listens.
    let start = demo.find("[http]").unwrap();
    let end = demo[start..].find("# Every institution").unwrap() + start;
    std::fs::write(&config, format!("{}{}", &demo[..start], &demo[end..])).unwrap();
    let d = Daemon::start(&sb);
    assert!(!d.log().contains("console listening"), "{}", d.log());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something listens on {port}"
    );
}

#[test]
fn a_token_file_others_can_read_stops_the_start_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.ready();
    let token = sb.path().join("var/state/console.token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut d = Daemon::spawn(&sb, &[], "info", &[]);
    assert_eq!(d.wait_exit(), Some(3), "{}", d.log());
    let log = d.log();
    assert!(log.contains("[http]") && log.contains("chmod 600"), "{log}");
}

/// Fails (never skips) when the browser is missing, saying how to install it.
fn browser_paths() -> (&'static Path, &'static Path) {
    let (chromium, driver) = (
        Path::new("/usr/bin/chromium"),
        Path::new("/usr/bin/chromedriver"),
    );
    assert!(
        chromium.exists() && driver.exists(),
        "the browser test needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver (.ci/run installs them)"
    );
    (chromium, driver)
}

/// chromedriver on a free port, logging to a file, killed when dropped.
struct Driver(std::process::Child, u16, PathBuf);

impl Driver {
    fn start(path: &Path, log: PathBuf) -> Driver {
        let port = free_port();
        let child = std::process::Command::new(path)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver(child, port, log)
    }

    /// A session of headless Chromium. A browser that fails to start on a
    /// loaded machine is tried again with a fresh profile, up to three
    /// times; the last failure names every error and chromedriver's log.
    async fn session(&self, chromium: &Path, profiles: &Path) -> fantoccini::Client {
        let mut errors = Vec::new();
        for attempt in 1..=3 {
            let mut caps = serde_json::Map::new();
            caps.insert(
                "goog:chromeOptions".to_owned(),
                serde_json::json!({
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--window-size=1400,1000",
                             format!("--user-data-dir={}", profiles.join(attempt.to_string()).display())]
                }),
            );
            match fantoccini::ClientBuilder::native()
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{}", self.1))
                .await
            {
                Ok(b) => return b,
                Err(e) => errors.push(format!("attempt {attempt}: {e}")),
            }
        }
        let log = std::fs::read_to_string(&self.2).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "no WebDriver session of headless Chromium:\n{}\nchromedriver's log ends with:\n{}",
            errors.join("\n"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The local code (or `None`: ignored) the samples' mapping gives a row.
fn sample_mapping(sb: &Sandbox) -> Vec<(String, String, Option<String>)> {
    let text = std::fs::read_to_string(sb.path().join("samples/tourism/mapping.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            let code = (f[5] == "filled").then(|| f[6].to_owned());
            (f[1].to_owned(), f[2].to_owned(), code)
        })
        .collect()
}

/// The pending rows the demo's first use fills by hand once the seat plan
/// and the catalogue are parked: its season, activity, VAT code, two tariff
/// types, two audience subcategories and four seat categories (the other
/// kinds fill themselves as the files apply).
const HAND_MAPPED: usize = 11;

/// Waits until `dir` holds at least `n` manifests of `kind`.
fn wait_for_files(dir: &Path, kind: &str, n: usize, d: &Daemon) {
    let start = Instant::now();
    while crate::util::manifests(dir, kind).len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "fewer than {n} {kind} files in {}:\n{}",
            dir.display(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every page of the console, as the README shows them.
const SHOTS: [&str; 8] = [
    "links.png",
    "mapping.png",
    "resumed.png",
    "catalogue.png",
    "files.png",
    "runs.png",
    "sales.png",
    "reconciliation.png",
];

#[test]
fn a_browser_logs_in_fills_the_pending_mappings_and_the_parked_files_resume() {
    let (chromium, driver_path) = browser_paths();
    let sb = Sandbox::new();
    sb.ready();
    let d = daemon_with_console(&sb);
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    let parked = parked(&sb);
    crate::util::wait_for_file(&parked, "SEATPLAN", || d.log());
    crate::util::wait_for_file(&parked, "CATALOGUE", || d.log());
    let pending = sb.json(&["mapping", "list", "--pending"]);
    let pending: Vec<(String, String)> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["manager_id"].to_string(),
            )
        })
        .collect();
    let plan = sample_mapping(&sb);
    // The kinds ops map by hand (the others fill themselves as files apply).
    let pending: Vec<(String, String)> = pending
        .into_iter()
        .filter(|(k, _)| plan.iter().any(|(pk, _, _)| pk == k))
        .collect();
    assert_eq!(
        pending.len(),
        HAND_MAPPED,
        "the files parked on pending mappings: {pending:?}"
    );
    let code_of = |k: &str, m: &str| {
        plan.iter()
            .find(|(pk, pm, _)| pk == k && pm == m)
            .map(|p| p.2.is_some())
    };
    let by_form_set = pending
        .iter()
        .filter(|(k, m)| code_of(k, m) == Some(true))
        .count();
    let by_form_ignored = HAND_MAPPED - by_form_set;
    let csv = std::fs::read_to_string(sb.path().join("samples/tourism/mapping.csv")).unwrap();
    let c = Console::of(&sb);
    let driver = Driver::start(driver_path, sb.path().join("chromedriver.log"));
    let shots = sb.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (answers, lines) = rt.block_on(async {
        let b = driver.session(chromium, &sb.path().join("chromium")).await;
        use fantoccini::Locator;
        let shot = |name: &'static str| {
            let b = b.clone();
            let path = shots.join(name);
            async move { std::fs::write(path, b.screenshot().await.unwrap()).unwrap() }
        };
        b.goto(&format!("{}/mapping", c.base)).await.unwrap();
        let refused = b.source().await.unwrap();
        assert!(refused.contains("Login needed"), "{refused}");
        b.goto(&format!("{}/login", c.base)).await.unwrap();
        b.find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys(&c.token)
            .await
            .unwrap();
        b.find(Locator::Id("login"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.wait().for_element(Locator::Css("h2")).await.unwrap();
        let links = b.source().await.unwrap();
        assert!(links.contains("pending mappings"), "{links}");
        // The trigger buttons of the link's jobs.
        assert!(links.contains("export-contingent"), "{links}");
        shot("links.png").await;
        // A pasted CSV with a broken row first: refused whole, each bad
        // row named, nothing changed (the files stay parked).
        let paste = |text: String| {
            let b = b.clone();
            let base = c.base.clone();
            async move {
                b.goto(&format!("{base}/mapping")).await.unwrap();
                b.execute(
                    "document.getElementById('import-csv').value = arguments[0];",
                    vec![serde_json::json!(text)],
                )
                .await
                .unwrap();
                b.find(Locator::Id("import"))
                    .await
                    .unwrap()
                    .click()
                    .await
                    .unwrap();
                // The answer's own element: the page the form was on has an
                // `h1` too, and waiting for one returned that page when the
                // answer was slow (a loaded CI run).
                b.wait()
                    .for_element(Locator::Css("#changed, #import-errors"))
                    .await
                    .unwrap();
                b.source().await.unwrap()
            }
        };
        let broken =
            csv.replacen(";filled;", ";filed;", 1) + "OPERA;season;oops;X;Y;filled;T3637\n";
        let refused = paste(broken).await;
        assert!(refused.contains("Nothing changed"), "{refused}");
        assert!(refused.contains("id=\"import-errors\""), "{refused}");
        assert!(refused.contains("<td>2</td>"), "line 2 named: {refused}");
        assert!(
            refused.contains("filed"),
            "the bad status quoted: {refused}"
        );
        // Every pending row, one by one, through the forms: a code chosen
        // from the local codes that exist, or ignored. Each answer says
        // which parked files were tried again.
        let mut answers = String::new();
        for (i, (kind, id)) in pending.iter().enumerate() {
            let code = plan
                .iter()
                .find(|(k, m, _)| k == kind && m == id)
                .unwrap_or_else(|| panic!("{kind} {id} is not in the samples' mapping"))
                .2
                .clone();
            b.goto(&format!("{}/mapping?kind={kind}", c.base))
                .await
                .unwrap();
            if i == 0 {
                shot("mapping.png").await;
            }
            let row = format!("{kind}-{id}");
            match code {
                Some(code) => {
                    b.find(Locator::Id(&format!("code-{row}")))
                        .await
                        .unwrap()
                        .select_by_value(&code)
                        .await
                        .unwrap();
                    b.find(Locator::Id(&format!("set-{row}")))
                        .await
                        .unwrap()
                        .click()
                        .await
                        .unwrap();
                }
                None => {
                    b.find(Locator::Id(&format!("ignore-{row}")))
                        .await
                        .unwrap()
                        .click()
                        .await
                        .unwrap();
                }
            }
            b.wait()
                .for_element(Locator::Id("changed"))
                .await
                .unwrap_or_else(|e| panic!("{kind} {id}: no change said: {e}"));
            answers.push_str(&b.source().await.unwrap());
        }
        // The last row's answer: the files it let through.
        shot("resumed.png").await;
        // The samples' CSV pasted now finds every row the forms set as they
        // left it, and adds the rows no file asked for (ignored ones).
        let imported = paste(csv.clone()).await;
        assert!(
            imported.contains(&format!(
                "{} created, 0 changed, {HAND_MAPPED} unchanged",
                plan.len() - HAND_MAPPED
            )),
            "{imported}"
        );
        // The catalogue: product 1 validated, then assigned to GUICHET.
        b.goto(&format!("{}/catalogue", c.base)).await.unwrap();
        let catalogue = b.source().await.unwrap();
        assert!(
            catalogue.contains("differences from the last validated version"),
            "{catalogue}"
        );
        shot("catalogue.png").await;
        // Its logical configuration on its own first, then the product.
        b.find(Locator::Css(
            "button[id^='validate-logical_configuration-']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        let said = b.wait().for_element(Locator::Id("changed")).await.unwrap();
        let said = said.text().await.unwrap();
        assert!(
            said.contains("logical configuration") && said.contains("TRAV-STD"),
            "{said}"
        );
        b.goto(&format!("{}/catalogue", c.base)).await.unwrap();
        let catalogue = b.source().await.unwrap();
        assert!(
            !catalogue.contains("validate-logical_configuration-"),
            "{catalogue}"
        );
        b.find(Locator::Id("validate-1"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let said = b.wait().for_element(Locator::Id("changed")).await.unwrap();
        assert!(
            said.text()
                .await
                .unwrap()
                .starts_with("validated product 1 ")
        );
        b.goto(&format!("{}/catalogue", c.base)).await.unwrap();
        b.find(Locator::Id("profile-1"))
            .await
            .unwrap()
            .send_keys("GUICHET")
            .await
            .unwrap();
        b.find(Locator::Id("assign-1"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let said = b.wait().for_element(Locator::Id("changed")).await.unwrap();
        let said = said.text().await.unwrap();
        assert!(said.contains("sellable now"), "{said}");
        // A contingent at the manager, sent by the Links page's button.
        sb.allot("PARTERRE:A:1-10");
        b.goto(&format!("{}/", c.base)).await.unwrap();
        b.find(Locator::Id("trigger-manager-export-contingent"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.wait()
            .for_element(Locator::Id("triggered"))
            .await
            .unwrap();
        let to_distributor = sb
            .path()
            .join("var/exchange/opera-tourism/to-distributor/done");
        wait_for_files(&to_distributor, "CONTINGENT", 1, &d);
        // The distributor sells A:1; the manager closes the performance;
        // the distributor, not told yet, sells A:2 and A:3: the manager
        // rejects both (performance-closed).
        assert!(sb.sell("PARTERRE:A:1") > 0);
        std::thread::sleep(Duration::from_millis(1100));
        sb.stxd(&[
            "performance",
            "close",
            "TRAV0115",
            "--link",
            "opera-tourism",
        ])
        .expect_code(0);
        std::thread::sleep(Duration::from_millis(1100));
        let lines = [sb.sell("PARTERRE:A:2"), sb.sell("PARTERRE:A:3")];
        sb.stxd(&["export", "sales", "--link", "opera-tourism"])
            .expect_code(0);
        wait_for_files(
            &sb.path().join("var/exchange/opera-tourism/to-manager/done"),
            "SALES",
            1,
            &d,
        );
        b.goto(&format!("{}/sales", c.base)).await.unwrap();
        let sales = b.source().await.unwrap();
        assert!(
            sales.contains("<span id=\"rejected-count\">2</span>"),
            "{sales}"
        );
        shot("sales.png").await;
        for (line, decision) in [(lines[0], "accept"), (lines[1], "dismiss")] {
            b.goto(&format!("{}/sales", c.base)).await.unwrap();
            b.find(Locator::Id(&format!("reason-{line}")))
                .await
                .unwrap()
                .send_keys(&format!("{decision}ed in the browser test"))
                .await
                .unwrap();
            b.find(Locator::Id(&format!("{decision}-{line}")))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let said = b.wait().for_element(Locator::Id("changed")).await.unwrap();
            let said = said.text().await.unwrap();
            assert!(said.contains(&format!("line {line} ")), "{said}");
        }
        // The manager tells the distributor in its next contingent.
        b.goto(&format!("{}/", c.base)).await.unwrap();
        b.find(Locator::Id("trigger-manager-export-contingent"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.wait()
            .for_element(Locator::Id("triggered"))
            .await
            .unwrap();
        wait_for_files(&to_distributor, "CONTINGENT", 2, &d);
        b.goto(&format!("{}/sales", c.base)).await.unwrap();
        let sales = b.source().await.unwrap();
        assert!(
            sales.contains("<span id=\"rejected-count\">0</span>"),
            "{sales}"
        );
        assert!(sales.contains("id=\"resolutions\""), "{sales}");
        assert!(sales.contains("dismissed by the manager"), "{sales}");
        for (page, name) in [
            ("/files", "files.png"),
            ("/runs", "runs.png"),
            ("/reconcile/opera-tourism", "reconciliation.png"),
        ] {
            b.goto(&format!("{}{page}", c.base)).await.unwrap();
            shot(name).await;
        }
        b.close().await.unwrap();
        (answers, lines)
    });
    // The forms' answers said which parked files resumed: both, applied.
    for kind in ["SEATPLAN", "CATALOGUE"] {
        assert!(
            answers.contains(&format!(
                "<span class=\"resumed-state\">applied</span>: opera-tourism.{kind}."
            )),
            "{kind} not said resumed: {answers}"
        );
    }
    // The store changed, each change a run marked as asked via the console.
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT count(*) FROM mapping WHERE status = 'pending'"
        ),
        ["0"]
    );
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT r.kind || '|' || r.status, count(*) FROM run r JOIN run_message m ON m.run = r.id \
             WHERE m.code = 'via' AND m.text = 'via console' GROUP BY 1 ORDER BY 1"
        ),
        [
            "catalogue-assign-profile|ok|1".to_owned(),
            "catalogue-validate|ok|2".to_owned(),
            "mapping-import|failed|1".to_owned(),
            "mapping-import|ok|1".to_owned(),
            format!("mapping-ignore|ok|{by_form_ignored}"),
            format!("mapping-set|ok|{by_form_set}"),
        ]
        .into_iter()
        .filter(|r| !r.ends_with("|0"))
        .collect::<Vec<_>>()
    );
    // The manager: both lines resolved through the console, none left.
    let rejects = sb.json(&["sales", "rejects", "--link", "opera-tourism"]);
    assert_eq!(rejects["count"], 0, "{rejects:#}");
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT l.line, l.decision, l.by_user, count(m.run) FROM sales_line_resolution l \
             LEFT JOIN run_message m ON m.run = l.run AND m.code = 'via' AND m.text = 'via console' \
             GROUP BY l.line ORDER BY l.line"
        ),
        [
            format!("{}|accepted|console|1", lines[0]),
            format!("{}|dismissed|console|1", lines[1]),
        ]
    );
    // The distributor, told by the contingent: A:2 accepted, A:3 dismissed.
    let disputed = sb.json(&["sale", "list", "--disputed"]);
    let told: Vec<(i64, String)> = disputed["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["resolution"]["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        told,
        [
            (lines[0], "accepted".to_owned()),
            (lines[1], "dismissed".to_owned())
        ]
    );
    // Both parked files left parked/ and are applied, each once; the
    // contingents too.
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT kind || ':' || state FROM file_journal WHERE direction = 'in' ORDER BY kind, sequence"
        ),
        [
            "CATALOGUE:applied",
            "CONTINGENT:applied",
            "CONTINGENT:applied",
            "SEATPLAN:applied"
        ]
    );
    assert!(crate::util::manifests(&parked, "SEATPLAN").is_empty());
    for shot in SHOTS {
        assert!(shots.join(shot).metadata().unwrap().len() > 1000, "{shot}");
    }
    // The docs' images are made from these (docs/console.md says how).
    if let Some(out) = std::env::var_os("STXD_CONSOLE_SCREENSHOTS") {
        for shot in SHOTS {
            std::fs::copy(shots.join(shot), Path::new(&out).join(shot)).unwrap();
        }
    }
}

#[test]
fn with_a_certificate_the_console_speaks_https_only() {
    let sb = Sandbox::new();
    let tls = sb.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(tls.join("key.pem"))
        .arg("-out")
        .arg(tls.join("cert.pem"))
        .output()
        .expect("openssl (Debian's openssl package)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let config = sb.path().join("config/stxd.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "token_file = \"../var/state/console.token\"\n",
        "token_file = \"../var/state/console.token\"\ntls_cert = \"../tls/cert.pem\"\ntls_key = \"../tls/key.pem\"\n",
    );
    std::fs::write(&config, text).unwrap();
    sb.ready();
    let d = Daemon::start(&sb);
    d.wait_log("console listening on https://");
    let c = Console::of(&sb);
    let https = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                .disable_verification(true)
                .build(),
        )
        .build()
        .new_agent();
    let base = c.base.replace("http://", "https://");
    let mut resp = https.get(format!("{base}/healthz")).call().expect("HTTPS");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "ok\n");
    let resp = https.get(format!("{base}/metrics")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = https
        .post(format!("{base}/login"))
        .send_form([("token", c.token.as_str())])
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP gets no page.
    assert!(c.agent.get(format!("{}/healthz", c.base)).call().is_err());
}

#[test]
fn hammering_the_mapping_page_while_files_arrive_applies_every_file_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    let d = daemon_with_console(&sb);
    let c = Arc::new(Console::of(&sb));
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (c, stop) = (Arc::clone(&c), Arc::clone(&stop));
        std::thread::spawn(move || {
            let bearer = format!("Bearer {}", c.token);
            let (mut pages, mut sets) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let (status, page) = c.get("/mapping");
                assert_eq!(status, 200, "{page}");
                pages += 1;
                let csrf = csrf_in(&page);
                let (status, body) = c.post(
                    "/mapping/change",
                    &[("Authorization", bearer.as_str())],
                    &[
                        ("csrf", csrf.as_str()),
                        ("link", "opera-tourism"),
                        ("kind", "season"),
                        ("manager_id", "1001"),
                        ("action", "set"),
                        ("local_code", "T3637"),
                    ],
                );
                assert_eq!(status, 200, "{body}");
                sets += 1;
            }
            (pages, sets)
        })
    };
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    let done = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/done");
    crate::util::wait_for_file(&done, "SEATPLAN", || d.log());
    crate::util::wait_for_file(&done, "CATALOGUE", || d.log());
    stop.store(true, Ordering::Relaxed);
    let (pages, sets) = hammer.join().expect("every console request answered");
    assert!(pages > 0 && sets > 0);
    // Each file applied once, by one import run, none failed.
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT kind || ':' || sequence || ':' || state FROM file_journal WHERE direction = 'in' ORDER BY kind"
        ),
        ["CATALOGUE:1:applied", "SEATPLAN:1:applied"]
    );
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT kind || ':' || status FROM run WHERE kind LIKE 'import-%' ORDER BY kind"
        ),
        ["import-catalogue:ok", "import-seatplan:ok"]
    );
    // Every change through the console was recorded, each as its run.
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT count(*) FROM run WHERE kind = 'mapping-set' AND status = 'ok'"
        ),
        [sets.to_string()]
    );
    assert!(!d.log().contains(" ERROR "), "{}", d.log());
}

#[test]
fn the_files_page_shows_a_refused_file_with_its_reason_and_retries_it() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    let payload = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file() && p.extension().is_some_and(|x| x != "stx"))
        .expect("the seat plan's payload");
    let mut bytes = std::fs::read(&payload).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(&payload, bytes).unwrap();
    let d = Daemon::start(&sb);
    crate::util::wait_for_file(&inbox.join("error"), "SEATPLAN", || d.log());
    let c = Console::of(&sb);
    let (status, page) = c.get("/files");
    assert_eq!(status, 200, "{page}");
    let manifest = "opera-tourism.SEATPLAN.00000001.stx";
    assert!(page.contains(manifest), "{page}");
    assert!(page.contains("code:"), "the .reason is shown: {page}");
    assert!(page.contains("value=\"error\""), "a retry button: {page}");
    // With the run that refused it.
    let run = rows(
        &sb,
        "TOURISM.sqlite",
        &format!("SELECT id FROM run WHERE file = '{manifest}' AND status = 'failed'"),
    );
    assert_eq!(run.len(), 1, "the refusal's run");
    assert!(
        page.contains(&format!(
            "{manifest} <span class=\"state\">refused</span> <a href=\"/runs/TOURISM/{}\">",
            run[0]
        )),
        "{page}"
    );
    let bearer = format!("Bearer {}", c.token);
    let (status, body) = c.post(
        "/retry",
        &[("Authorization", bearer.as_str())],
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("link", "opera-tourism"),
            ("side", "distributor"),
            ("folder", "error"),
            ("file", manifest),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("put back into"), "{body}");
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT r.kind FROM run r JOIN run_message m ON m.run = r.id WHERE m.code = 'via' AND m.text = 'via console'"
        ),
        ["retry"]
    );
    // A name that is not a file of error/ is refused, nothing moved.
    let (status, body) = c.post(
        "/retry",
        &[("Authorization", bearer.as_str())],
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("link", "opera-tourism"),
            ("side", "distributor"),
            ("folder", "error"),
            ("file", "../to-distributor/x.stx"),
        ],
    );
    assert_eq!(status, 422, "{body}");
}

#[test]
fn the_files_page_lists_done_files_newest_first_each_with_its_run() {
    let sb = Sandbox::new();
    sb.contingent_applied();
    let _d = daemon_with_console(&sb);
    let c = Console::of(&sb);
    let (status, page) = c.get("/files?link=opera-tourism");
    assert_eq!(status, 200, "{page}");
    let distributor = &page[page.find("opera-tourism · distributor").expect(&page)..];
    let done = &distributor[distributor.find("class=\"done\"").expect(distributor)..];
    // The contingent, applied last, comes first; each file links to the
    // run that applied it.
    let journal = rows(
        &sb,
        "TOURISM.sqlite",
        "SELECT kind, run_id FROM file_journal WHERE direction = 'in' AND state = 'applied'",
    );
    assert_eq!(journal.len(), 3, "{journal:?}");
    let mut at = Vec::new();
    for row in &journal {
        let (kind, run) = row.split_once('|').unwrap();
        let entry = format!(
            "opera-tourism.{kind}.00000001.stx <span class=\"state\">applied</span> <a href=\"/runs/TOURISM/{run}\">run {run}</a>"
        );
        at.push((
            done.find(&entry)
                .unwrap_or_else(|| panic!("{entry} in {done}")),
            kind.to_owned(),
        ));
    }
    at.sort();
    assert_eq!(at[0].1, "CONTINGENT", "{done}");
    // Payloads are not listed, only manifests.
    assert!(!done.contains(".xml"), "{done}");
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test moves a store out of the console's reach and back, as an operator's mistake would"
)]
fn runs_filtered_a_run_its_messages_the_reconciliation_and_readyz_naming_a_missing_store() {
    let sb = Sandbox::new();
    sb.contingent_applied();
    let _d = daemon_with_console(&sb);
    let c = Console::of(&sb);
    let listed = |query: &str| -> Vec<String> {
        let (status, page) = c.get(&format!("/runs?{query}"));
        assert_eq!(status, 200, "{page}");
        page.split("<tr><td><a href=\"/runs/")
            .skip(1)
            .map(|row| row.split("</td><td>").nth(1).unwrap().to_owned())
            .collect()
    };
    // Filtered by institution and kind: the one contingent applied.
    assert_eq!(
        listed("institution=TOURISM&kind=import-contingent"),
        ["import-contingent"]
    );
    // By status: nothing failed.
    assert_eq!(
        listed("institution=TOURISM&status=failed"),
        Vec::<String>::new()
    );
    // Unfiltered, both institutions' runs, the manager's exports among them.
    let all = listed("");
    assert!(all.iter().any(|k| k == "export-contingent"), "{all:?}");
    assert!(all.iter().any(|k| k == "import-seatplan"), "{all:?}");
    // A run's page shows its messages.
    let run = rows(
        &sb,
        "TOURISM.sqlite",
        "SELECT run_id FROM file_journal WHERE kind = 'CONTINGENT'",
    );
    let (status, page) = c.get(&format!("/runs/TOURISM/{}", run[0]));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("import-contingent"), "{page}");
    assert!(
        page.contains("file opera-tourism.CONTINGENT.00000001.csv"),
        "{page}"
    );
    assert!(page.contains("version 1 applied: 4 seat(s)"), "{page}");
    // The reconciliation, computed on the request: consistent; an unknown link
    // is a 404 naming it.
    let (status, page) = c.get("/reconcile/opera-tourism");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("No difference between the two institutions' records"),
        "{page}"
    );
    let (status, page) = c.get("/reconcile/no-such-link");
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("no-such-link"), "{page}");
    // A store the console cannot open: not ready, saying which; ready again
    // once it is back.
    let store = sb.path().join("var/state/TOURISM.sqlite");
    let aside = sb.path().join("var/state/TOURISM.sqlite.aside");
    std::fs::rename(&store, &aside).unwrap();
    let (status, said) = c.get("/readyz");
    std::fs::rename(&aside, &store).unwrap();
    assert_eq!(status, 503, "{said}");
    assert!(said.contains("store of TOURISM"), "{said}");
    assert_eq!(c.get("/readyz"), (200, "ready\n".to_owned()));
}

/// The value of the sample of `metric` with these labels in a scrape.
fn sample(text: &str, metric: &str, want: &[(&str, &str)]) -> Option<f64> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a Prometheus text exposition");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// The sizes of the files of `dir` whose names contain `part`, summed.
fn bytes_of(dir: &Path, part: &str) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(part))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn sftp_bytes_and_failed_connections_are_counted_in_the_metrics() {
    use crate::servers::Kind;
    let mut server = crate::servers::start(Kind::Sshd);
    let sides = crate::util::SftpSides::new(server.as_ref(), "manager");
    let port = free_port();
    let config = sides.root().join("manager.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[daemon]\nscan_seconds = 1\n\n[http]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n",
        sides.root().join("console.token").display()
    ));
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start_args(&sides.sandbox, &["--config", "manager.toml"], "info");
    daemon.wait_log("console listening");
    let c = Console {
        base: format!("http://127.0.0.1:{port}"),
        token: std::fs::read_to_string(sides.root().join("console.token"))
            .unwrap()
            .trim()
            .to_owned(),
        agent: agent(),
    };
    let metric = |name: &str, labels: &[(&str, &str)]| {
        let (status, text) = c.get("/metrics");
        assert_eq!(status, 200, "{text}");
        sample(&text, name, labels)
    };
    let manager = [("link", "opera-tourism"), ("side", "manager")];
    let bytes = |direction: &str| {
        metric(
            "stxd_sftp_transfer_bytes_total",
            &[manager[0], manager[1], ("direction", direction)],
        )
    };
    // Out: the seat plan pushed to the share.
    sides
        .manager(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    daemon.wait_log("pair pushed");
    let pushed = bytes_of(&sides.share("to-distributor"), "SEATPLAN");
    assert!(pushed > 0);
    // In: a pair the distributor left on the share, pulled whatever its
    // content (the pipeline refuses it afterwards: not signed).
    let to_manager = sides.share("to-manager");
    std::fs::create_dir_all(&to_manager).unwrap();
    std::fs::write(
        to_manager.join("opera-tourism.SALES.00000001.csv"),
        "x".repeat(70_000),
    )
    .unwrap();
    std::fs::write(
        to_manager.join("opera-tourism.SALES.00000001.stx"),
        "not a manifest\n",
    )
    .unwrap();
    let pulled = bytes_of(&to_manager, "SALES");
    daemon.wait_log("pair pulled");
    assert_eq!(bytes("out"), Some(pushed as f64));
    assert_eq!(bytes("in"), Some(pulled as f64));
    assert_eq!(
        metric("stxd_sftp_connection_failures_total", &manager),
        Some(0.0)
    );
    daemon.signal(libc::SIGTERM);
    daemon.wait_exit();

    // The server gone: a new daemon cannot connect, and says so; its
    // counters start again from 0.
    server.stop();
    let daemon = Daemon::start_args(&sides.sandbox, &["--config", "manager.toml"], "info");
    daemon.wait_log("console listening");
    daemon.wait_log("sftp poll failed");
    let failures = metric("stxd_sftp_connection_failures_total", &manager).unwrap();
    assert!(failures >= 1.0, "{failures}\n{}", daemon.log());
    assert_eq!(bytes("out"), Some(0.0));
    assert_eq!(bytes("in"), Some(0.0));
}

#[test]
fn a_changed_price_shows_its_difference_and_its_rate_table_validates_alone() {
    let sb = Sandbox::new();
    sb.first_use_done();
    crate::catalogue_changes::manager_changes(
        &sb,
        "price.xml",
        r#"  <rateTable id="1801" code="TRAV-RT" name="Tarifs La Traviata" currency="EUR">
    <price seatCategory="2001" tariffType="1201" audienceSubcategory="1301" amount="9000"/>
  </rateTable>"#,
    );
    let _d = daemon_with_console(&sb);
    let c = Console::of(&sb);
    let (status, page) = c.get("/catalogue");
    assert_eq!(status, 200, "{page}");
    // The difference the import kept, and a button for the rate table only.
    assert!(
        page.contains("rate table TRAV-RT</strong>: price"),
        "{page}"
    );
    assert!(page.contains("85.00 EUR → 90.00 EUR"), "{page}");
    assert!(page.contains("id=\"validate-rate_table-1\""), "{page}");
    assert!(
        !page.contains("id=\"validate-1\""),
        "product 1 stays validated: {page}"
    );
    let csrf = csrf_in(&page);
    let bearer = format!("Bearer {}", c.token);
    let auth = [("Authorization", bearer.as_str())];
    let (status, said) = c.post(
        "/catalogue/validate",
        &auth,
        &[
            ("csrf", &csrf),
            ("link", "opera-tourism"),
            ("object", "nonsense"),
            ("id", "1"),
        ],
    );
    assert_eq!(status, 422, "{said}");
    let (status, said) = c.post(
        "/catalogue/validate",
        &auth,
        &[
            ("csrf", &csrf),
            ("link", "opera-tourism"),
            ("object", "rate_table"),
            ("id", "1"),
        ],
    );
    assert_eq!(status, 200, "{said}");
    assert!(said.contains("rate table 1 TRAV-RT"), "{said}");
    let left = sb.json(&["catalogue", "list", "--to-validate"]);
    assert_eq!(left["products"], serde_json::json!([]), "{left:#}");
    let (_, page) = c.get("/catalogue");
    assert!(!page.contains("85.00 EUR → 90.00 EUR"), "{page}");
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT r.kind FROM run r JOIN run_message m ON m.run = r.id \
             WHERE m.code = 'via' AND m.text = 'via console'"
        ),
        ["catalogue-validate"]
    );

    // A resolution the domain refuses (no such rejected line) changes
    // nothing and leaves a failed run, marked via the console; without
    // the CSRF token nothing at all.
    let resolve = [
        ("link", "opera-tourism"),
        ("line", "99"),
        ("decision", "dismiss"),
        ("reason", "typo"),
    ];
    assert_eq!(c.post("/sales/resolve", &auth, &resolve).0, 403);
    let with_csrf = [
        resolve[0],
        resolve[1],
        resolve[2],
        resolve[3],
        ("csrf", csrf.as_str()),
    ];
    let (status, said) = c.post("/sales/resolve", &auth, &with_csrf);
    assert_eq!(status, 422, "{said}");
    assert!(said.contains("line id 99"), "{said}");
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT r.kind || '|' || r.status FROM run r JOIN run_message m ON m.run = r.id \
             WHERE m.code = 'via' AND m.text = 'via console'"
        ),
        ["resolve-line|failed"]
    );
    assert!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line FROM sales_line_resolution"
        )
        .is_empty()
    );
    // The mapping table downloads as the CLI exports it.
    let (status, csv) = c.get("/mapping/export");
    assert_eq!(status, 200, "{csv}");
    let cli = sb.stxd(&["mapping", "export"]);
    cli.expect_code(0);
    assert_eq!(csv, cli.stdout());
}

#[test]
fn the_links_page_and_status_name_the_file_the_daemon_has_been_reading_for_long() {
    let sb = Sandbox::new();
    sb.ready();
    let d = daemon_with_console(&sb);
    let c = Console::of(&sb);
    let (code, page) = c.get("/");
    assert_eq!(code, 200, "{page}");
    assert!(!page.contains("id=\"reading\""), "{page}");
    // What the daemon writes while a file takes long (with its progress
    // line, every 10 s), here by hand: a file that long has no place in a
    // test.
    let record = |pid: i32| {
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        serde_json::json!({
            "pid": pid, "file": "opera-tourism.SALES.00000007.csv", "pass": "parse",
            "percent": 42, "read_bytes": 440_401_920u64, "bytes": 1_048_576_000u64,
            "seconds": 50, "at": at,
        })
        .to_string()
    };
    let path = sb.path().join("var/state/reading.json");
    std::fs::write(&path, record(d.pid())).unwrap();
    let said = "reading opera-tourism.SALES.00000007.csv for 50 s (parse 42% of 1000.0 MiB): its store stays locked until it is applied";
    let (_, page) = c.get("/");
    assert!(page.contains(&format!("The daemon is {said}")), "{page}");
    let status = sb.stxd(&["status"]);
    status.expect_code(0);
    assert!(status.stdout().contains(said), "{}", status.stdout());
    // Another process's record (a daemon killed in the middle of a file)
    // is not this daemon's.
    std::fs::write(&path, record(d.pid() + 1)).unwrap();
    let (_, page) = c.get("/");
    assert!(!page.contains("id=\"reading\""), "{page}");
    assert!(!sb.stxd(&["status"]).stdout().contains("reading opera"));
}
