//! The dashboard in a real headless browser (Chromium through chromedriver, spoken to over the
//! WebDriver HTTP protocol with reqwest): log in with the form, open the overview and a send's
//! page on a phone-sized window, read the numbers the browser shows and compare them with
//! `loa report --format json`. Without chromedriver: a clear skip, or a failure when `CI=true`.

mod report_story;
mod support;

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "trình-duyệt-7";
/// The key WebDriver names elements by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver() -> Option<String> {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    std::path::Path::new(&path).is_file().then_some(path)
}

/// chromedriver, stopped when the test ends (even on a failed assertion), with the browser it
/// started: they share a process group of their own, and the whole group is killed. Killing
/// chromedriver alone left a test's Chromium running, adopted by init, after every run whose
/// session was not closed first.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group chromedriver leads
            // (`process_group(0)` below); it touches no memory of this process.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Session {
    http: reqwest::Client,
    url: String,
}

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("webdriver request");
        let status = resp.status();
        let v: Value = resp.json().await.expect("webdriver JSON");
        assert!(status.is_success(), "{path}: {status} {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT].as_str().expect("element id").to_string()
    }

    /// Clicks what `css` finds and waits for the page it leads to: WebDriver may answer a click
    /// that submits a form before the new page has loaded.
    async fn click_to_next_page(&self, css: &str) {
        let page = "return [performance.timeOrigin, document.readyState];";
        let before = self.script(page).await[0].clone();
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
        for _ in 0..100 {
            let now = self.script(page).await;
            if now[0] != before && now[1] == json!("complete") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("clicking {css} led to no new page within 10 s");
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        let v = self
            .call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await;
        v.as_str().unwrap_or_default().trim().to_string()
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }
}

/// Starts chromedriver on a free port and opens a headless session.
async fn open(path: &str) -> (Driver, Session) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // chromedriver takes a moment to listen; this waits for a process, not for a schedule.
    let started = Instant::now();
    loop {
        let ready = http.get(format!("{base}/status")).send().await;
        if let Ok(r) = ready
            && let Ok(v) = r.json::<Value>().await
            && v["value"]["ready"] == json!(true)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=412,915", "--lang=vi"]
        }
    }}});
    let resp = http
        .post(format!("{base}/session"))
        .json(&caps)
        .send()
        .await
        .expect("new session");
    let v: Value = resp.json().await.expect("session JSON");
    let id = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {v}"))
        .to_string();
    let url = format!("{base}/session/{id}");
    (driver, Session { http, url })
}

#[tokio::test]
async fn the_dashboard_in_a_headless_browser() {
    let Some(path) = chromedriver() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but chromedriver is missing: install chromium and chromium-driver");
        }
        eprintln!(
            "SKIPPED tests/browser.rs: no chromedriver at /usr/bin/chromedriver (set CHROMEDRIVER, or apt-get install chromium chromium-driver)"
        );
        return;
    };
    let db = support::sqlite();
    let store = db.store().await;
    let story = report_story::build(&store).await;
    let site = report_story::serve(&store, Some(TOKEN)).await;
    let (_driver, s) = open(&path).await;

    // Logging in with the form lands on the overview.
    s.go(&format!("{site}/")).await;
    let here = s.call(reqwest::Method::GET, "/url", None).await;
    assert_eq!(
        here,
        json!(format!("{site}/login")),
        "sent to the login page"
    );
    let field = s.find("#token").await;
    s.call(
        reqwest::Method::POST,
        &format!("/element/{field}/value"),
        Some(json!({ "text": TOKEN })),
    )
    .await;
    s.click_to_next_page("button[type=submit]").await;
    let here = s.call(reqwest::Method::GET, "/url", None).await;
    assert_eq!(here, json!(format!("{site}/")));
    let title = s.call(reqwest::Method::GET, "/title", None).await;
    assert_eq!(title, json!("Tổng quan · loa"));
    let cookie_visible = s.script("return document.cookie").await;
    assert_eq!(cookie_visible, json!(""), "the cookie is HttpOnly");

    // The overview's numbers, as the browser shows them, against the report's.
    let all = run_report(&db.url, &story, &[]);
    let hop = format!("section[data-send=\"{}\"]", story.hop);
    for key in ["targeted", "sent", "delivered", "seen", "failed"] {
        let shown = s
            .text(&format!(
                "{hop} tr[data-village=\"total\"] td[data-k=\"{key}\"]"
            ))
            .await;
        assert_eq!(
            shown,
            all["sends"][1]["total"][key].to_string(),
            "overview {key}"
        );
        let total = s.text(&format!("#tong span[data-k=\"{key}\"]")).await;
        assert_eq!(total, all["total"][key].to_string(), "overview total {key}");
    }
    let heads = s.text("#tong span[data-k=\"heads\"]").await;
    assert_eq!(
        heads,
        format!(
            "{}/{}",
            all["total"]["heads_confirmed"], all["total"]["heads_asked"]
        )
    );
    assert_fits(&s, "overview").await;
    screenshot(&s, "overview").await;

    // A send's page: every village's numbers.
    s.go(&format!("{site}/sends/{}", story.hop)).await;
    let one = run_report(&db.url, &story, &["hop"]);
    let send = &one["sends"][0];
    for v in send["villages"].as_array().expect("villages") {
        let village = v["village_id"].as_str().unwrap_or("-");
        for key in ["targeted", "sent", "delivered", "seen", "failed", "pending"] {
            let shown = s
                .text(&format!(
                    "#theo-thon tr[data-village=\"{village}\"] td[data-k=\"{key}\"]"
                ))
                .await;
            assert_eq!(shown, v[key].to_string(), "{village} {key}");
        }
    }
    let chart_lines = s
        .script("return document.querySelectorAll('svg.chart polyline').length")
        .await;
    assert_eq!(chart_lines, json!(4));
    let reason = s.text("#khong-gui-duoc").await;
    assert!(reason.contains("nhóm Zalo đã bị tắt"), "{reason}");
    assert_fits(&s, "send page").await;
    screenshot(&s, "send").await;
    s.call(reqwest::Method::DELETE, "", None).await;
    store.close().await;
}

fn run_report(db: &str, story: &report_story::Story, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loa"))
        .arg("report")
        .args(args)
        .args(["--format", "json", "--database", db])
        .current_dir(story.dir.path())
        .env("LOA_NOW", report_story::NOW)
        .env("LOA_COMMUNE_ID", report_story::COMMUNE_ID)
        .output()
        .expect("loa report");
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// On a phone-sized window the page does not scroll sideways (wide tables scroll in their box).
async fn assert_fits(s: &Session, page: &str) {
    let fits = s
        .script("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(fits, json!(true), "{page} is wider than the phone");
}

/// With `LOA_SCREENSHOTS=DIR`, keeps what the browser showed, for a human to look at.
async fn screenshot(s: &Session, name: &str) {
    let Ok(dir) = std::env::var("LOA_SCREENSHOTS") else {
        return;
    };
    use base64::Engine as _;
    let v = s.call(reqwest::Method::GET, "/screenshot", None).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .expect("base64");
    std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).expect("write");
}

/// A head opens their confirm link in the browser and taps the button: the page thanks them and
/// the ledger records the confirmation by link; an altered link gets the refusal page.
#[tokio::test]
async fn the_confirm_page_in_a_headless_browser() {
    use loa::clock::Clock;
    use loa::confirm::link::Links;
    use loa::daemon::Daemon;
    use loa::deliver::log::LogChannel;

    let Some(path) = chromedriver() else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but chromedriver is missing"
        );
        eprintln!("SKIPPED the confirm page test: no chromedriver");
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = support::sqlite();
    let store = db.store().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ann = dir.path().join("announcements");
    std::fs::create_dir_all(&ann).expect("dir");
    std::fs::create_dir_all(dir.path().join("templates")).expect("dir");
    std::fs::write(
        ann.join("commune.yaml"),
        "commune: Xã Thử\nvillages:\n  - { id: a, name: Thôn Đông, heads: [{ name: Trưởng Đông, zalo_user: \"100001\" }] }\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("templates/meeting.tera"),
        "{{ title }}: 19 giờ tại nhà văn hoá.",
    )
    .expect("write");
    let due = support::local_in(60);
    std::fs::write(
        ann.join("hop.yaml"),
        format!("title: Họp thôn\nkind: meeting\nsend:\n  - at: {due}\nconfirm: {{ by: [village_head], within: 2h }}\n"),
    )
    .expect("write");

    // The daemon's HTTP side with confirm links, on a free port.
    let listener = loa::listen::bind("127.0.0.1:0").await.expect("bind");
    let site = format!("http://{}", listener.local_addr().expect("addr"));
    let links = Links::new(
        b"browser test secret",
        &site,
        jiff::SignedDuration::from_hours(72),
    );
    let state = std::sync::Arc::new(loa::web::WebState {
        store: store.clone(),
        commune: "default".into(),
        zalo: None,
        max_age: Duration::from_secs(600),
        wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        health: Default::default(),
        links: Some(links.clone()),
        villages: [("a".to_string(), "Thôn Đông".to_string())]
            .into_iter()
            .collect(),
        tz: jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("tz"),
        dashboard: None,
    });
    tokio::spawn(loa::web::serve(
        listener,
        loa::web::router(state, 65536),
        std::future::pending(),
    ));

    // The send: the head gets the message with their link.
    let tz = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    let at = loa::announce::values::parse_datetime(&due, &tz, true).expect("due");
    let clock = Clock::manual(at);
    let channel =
        LogChannel::open(Some(&dir.path().join("sends.jsonl")), Duration::ZERO).expect("log");
    let settings = support::zalo::settings(dir.path());
    let daemon = Daemon::new(store.clone(), channel, settings)
        .with_clock(clock)
        .with_links(links);
    daemon.load_all(at).await.expect("load");
    daemon.tick(at, &|| false).await.expect("tick");
    let text: String = sqlx::query_scalar("SELECT text FROM deliveries WHERE target = '100001'")
        .fetch_one(store.pool())
        .await
        .expect("the head's message");
    let link = loa::confirm::link::find_url(&text, &site)
        .expect("a link in the message")
        .to_string();

    let (_driver, s) = open(&path).await;
    s.go(&link).await;
    assert_eq!(s.text("h1").await, "Xác nhận đã nhận thông báo");
    assert_eq!(s.text(".who").await, "Thôn Đông — Trưởng Đông");
    assert!(
        s.text("blockquote")
            .await
            .contains("19 giờ tại nhà văn hoá")
    );
    assert_fits(&s, "confirm").await;
    s.click_to_next_page("button#confirm").await;
    assert_eq!(s.text("h1").await, "Đã xác nhận. Cảm ơn ông/bà!");
    let via: Option<String> =
        sqlx::query_scalar("SELECT via FROM confirmations WHERE village_id = 'a'")
            .fetch_one(store.pool())
            .await
            .expect("confirmation");
    assert_eq!(via.as_deref(), Some("link"));
    // Opening it again only says it is done; an altered link is refused.
    s.go(&link).await;
    assert_eq!(s.text("h1").await, "Thông báo này đã được xác nhận");
    s.go(&link.replacen("/c/", "/c/x", 1)).await;
    assert_eq!(s.text("h1").await, "Liên kết không hợp lệ");
}
