//! The dashboard over HTTP, against the router on a real ledger: no token → login, a wrong token
//! refused, the login cookie, the pages in Vietnamese, and the numbers on a send's page equal to
//! `loa report --format json`. Without a configured token the dashboard is off; the webhook and
//! health routes stay outside the protection.

mod report_story;
mod support;

use loa::deliver::zalo::config::Secret;
use report_story::Story;
use serde_json::Value;

const TOKEN: &str = "mã-bí-mật-42";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get(url: &str, bearer: Option<&str>, cookie: Option<&str>) -> (u16, String, String) {
    let mut req = client().get(url);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.expect("get");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, location, resp.text().await.unwrap_or_default())
}

/// The number in `<tr data-village="{village}" …>…<td … data-k="{key}">N</td>` of `html`.
pub fn cell(html: &str, village: &str, key: &str) -> String {
    let row_start = html
        .find(&format!("data-village=\"{village}\""))
        .unwrap_or_else(|| panic!("no row {village}"));
    let row = &html[row_start..];
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    let at = row
        .find(&format!("data-k=\"{key}\">"))
        .unwrap_or_else(|| panic!("no {key} in row {village}"));
    let rest = &row[at + key.len() + 10..];
    rest[..rest.find('<').unwrap_or(rest.len())].to_string()
}

/// `loa report --format json` for one announcement, as the CLI prints it.
pub fn report_json(db: &str, story: &Story, announcement: &str) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loa"))
        .args(["report", announcement, "--format", "json", "--database", db])
        .current_dir(story.dir.path())
        .env("LOA_NOW", report_story::NOW)
        .env("LOA_COMMUNE_ID", report_story::COMMUNE_ID)
        .output()
        .expect("loa report");
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test]
async fn dashboard_on_every_backend() {
    for db in support::databases().await {
        let store = db.store().await;
        let story = report_story::build(&store).await;
        let base = report_story::serve(&store, Some(TOKEN)).await;
        access(&base).await;
        pages(&base, &db.url, &store, &story).await;
        store.close().await;
    }
}

async fn access(base: &str) {
    // Nothing shown: to the login page. A wrong Bearer token: 401. A wrong cookie: login again.
    let (status, location, _) = get(&format!("{base}/"), None, None).await;
    assert_eq!((status, location.as_str()), (303, "/login"));
    let (status, _, body) = get(&format!("{base}/"), Some("đoán-bừa"), None).await;
    assert_eq!(status, 401);
    assert!(body.contains("Mã truy cập không đúng"));
    let (status, _, _) = get(&format!("{base}/sends/1"), Some(""), None).await;
    assert_eq!(status, 401);
    let (status, location, _) = get(&format!("{base}/"), None, Some("loa_dashboard=abc")).await;
    assert_eq!((status, location.as_str()), (303, "/login"));
    // The login page and a wrong token there.
    let (status, _, body) = get(&format!("{base}/login"), None, None).await;
    assert_eq!(status, 200);
    assert!(body.contains("Mã truy cập") && body.contains("<form"));
    let (status, _, body) = get(&format!("{base}/login?token=sai"), None, None).await;
    assert_eq!(status, 401);
    assert!(body.contains("Mã truy cập không đúng"));
    // The right token, by link and by the form: a cookie that opens the pages.
    let resp = client()
        .get(format!("{base}/login"))
        .query(&[("token", TOKEN)])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status().as_u16(), 303);
    let set = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(TOKEN), "the cookie is not the token itself");
    let cookie = set.split(';').next().expect("name=value").to_string();
    let (status, _, body) = get(&format!("{base}/"), None, Some(&cookie)).await;
    assert_eq!(status, 200, "{body}");
    let form = client()
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("form");
    assert_eq!(form.status().as_u16(), 303);
    assert!(form.headers().contains_key("set-cookie"));
    // Outside the protection.
    let (status, _, _) = get(&format!("{base}/healthz"), None, None).await;
    assert_eq!(status, 200);
}

async fn pages(base: &str, db: &str, store: &loa::ledger::Store, story: &Story) {
    let (_, _, html) = get(&format!("{base}/"), Some(TOKEN), None).await;
    assert!(html.contains("Các tệp thông báo đều hợp lệ"));
    // A file that stopped validating: its problems, as the planner stores them.
    sqlx::query("UPDATE announcements SET problems = $1 WHERE id = 'dien'")
        .bind(r#"[{"path":"announcements/dien.yaml","line":3,"column":5,"field":"send[0]","code":"unknown_field","message":"không có trường \"untill\""}]"#)
        .execute(store.pool())
        .await
        .expect("problems");
    // Nothing to say of the OA yet: no word of it.
    assert!(!html.contains("id=\"zalo\""), "{html}");
    // What Zalo last said of the ZNS quota, that morning: a tenth or less left.
    let quota = loa::ledger::StoredQuota {
        daily: 500,
        remaining: 37,
        seen_at: report_story::t("2026-12-01 09:13"),
        node: "n1".into(),
    };
    store
        .put_zns_quota(report_story::COMMUNE_ID, &quota)
        .await
        .expect("quota");
    let (status, _, html) = get(&format!("{base}/"), Some(TOKEN), None).await;
    assert_eq!(status, 200);
    for expected in [
        "<p id=\"zns-quota\" class=\"bad\">Tin ZNS (gửi đến số điện thoại) hôm nay: còn 37/500 tin (Zalo báo lúc 09:13). Sắp hết",
        "<html lang=\"vi\"",
        "Sắp gửi (48 giờ tới)",
        "T4 02/12/2026 08:00",
        "Đã gửi gần đây",
        "Xác nhận của trưởng thôn",
        "trả lời tin nhắn",
        "Không gửi được",
        "quá 7 ngày người nhận chưa nhắn tin cho OA",
        "nhóm Zalo đã bị tắt",
        "Tin nhắn từ người dân",
        "announcements/dien.yaml:3:5",
        "không có trường &quot;untill&quot;",
        "Cho hỏi họp ở đâu &lt;b&gt;ạ",
    ] {
        assert!(
            html.contains(expected),
            "{expected:?} missing from the overview:\n{html}"
        );
    }
    assert!(
        !html.contains("Đã nhận ạ"),
        "a confirming reply is not listed as a question"
    );
    assert!(!html.contains("<b>ạ</b>"), "people's texts are escaped");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resources"
    );

    let report = report_json(db, story, "hop");
    let send = &report["sends"][0];
    let (status, _, page) = get(&format!("{base}/sends/{}", story.hop), Some(TOKEN), None).await;
    assert_eq!(status, 200);
    for v in send["villages"].as_array().expect("villages") {
        let village = v["village_id"].as_str().unwrap_or("-");
        for key in [
            "targeted",
            "sent",
            "delivered",
            "seen",
            "failed",
            "pending",
            "expired",
            "missed",
            "unknown",
        ] {
            assert_eq!(
                cell(&page, village, key),
                v[key].to_string(),
                "{village} {key}"
            );
        }
        let heads = format!("{}/{}", v["heads_confirmed"], v["heads_asked"]);
        assert_eq!(cell(&page, village, "heads"), heads, "{village}");
    }
    for key in ["targeted", "sent", "delivered", "seen", "failed"] {
        assert_eq!(
            cell(&page, "total", key),
            send["total"][key].to_string(),
            "total {key}"
        );
    }
    // The chart ends at the report's numbers.
    for (series, value) in [
        (0, &send["total"]["sent"]),
        (1, &send["total"]["delivered"]),
        (2, &send["total"]["seen"]),
        (3, &send["total"]["heads_confirmed"]),
    ] {
        assert!(
            page.contains(&format!("data-series=\"{series}\" data-final=\"{value}\"")),
            "series {series}"
        );
    }
    for expected in [
        "<svg",
        "Trưởng B",
        "T3 01/12/2026 10:00",
        "nhắc xác nhận",
        "Người chưa nhận được",
    ] {
        assert!(
            page.contains(expected),
            "{expected:?} missing from the send page"
        );
    }
    let (status, _, _) = get(&format!("{base}/sends/999999"), Some(TOKEN), None).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&format!("{base}/sends/abc"), Some(TOKEN), None).await;
    assert_eq!(status, 404);
    // 0 is no send either (it read as "any send": the newest one's figures under "#0").
    let (status, _, _) = get(&format!("{base}/sends/0"), Some(TOKEN), None).await;
    assert_eq!(status, 404);
    // The reminder is no send page of its own.
    let (status, _, _) = get(
        &format!("{base}/sends/{}", story.reminder),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn without_a_token_the_dashboard_is_off() {
    let db = support::sqlite();
    let store = db.store().await;
    let base = report_story::serve(&store, None).await;
    for path in ["/", "/sends/1", "/login", "/login?token=x"] {
        let (status, _, body) = get(&format!("{base}{path}"), Some("x"), None).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("Bảng theo dõi chưa bật"), "{path}: {body}");
    }
    let (status, _, _) = get(&format!("{base}/healthz"), None, None).await;
    assert_eq!(status, 200);
    let resp = client()
        .post(format!("{base}{}", loa::web::WEBHOOK_PATH))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_ne!(
        resp.status().as_u16(),
        404,
        "the webhook route is not the dashboard's"
    );
}

#[test]
fn the_token_comes_from_config_env_or_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(&file, "từ-tệp\n").expect("write");
    let mut web = loa::config::WebConfig::default();
    assert!(
        web.dashboard_token().expect("ok").is_none(),
        "off by default"
    );
    web.dashboard_token_file = file;
    assert_eq!(
        web.dashboard_token()
            .expect("ok")
            .map(|s| s.expose().to_string()),
        Some("từ-tệp".into())
    );
    web.dashboard_token = Secret::new("trực-tiếp");
    assert_eq!(
        web.dashboard_token()
            .expect("ok")
            .map(|s| s.expose().to_string()),
        Some("trực-tiếp".into())
    );
    assert_eq!(format!("{:?}", web.dashboard_token), "***", "never printed");
}

#[tokio::test]
async fn guessing_the_token_is_stopped_and_the_cookie_cannot_be_forged() {
    let db = support::sqlite();
    let store = db.store().await;
    let base = report_story::serve(&store, Some(TOKEN)).await;
    // The cookie a login sets, and one made as the cookie used to be (a plain hash of the
    // token): without the key it opens nothing.
    let resp = client()
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("login");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a cookie")
        .to_string();
    use sha2::Digest as _;
    let forged: String = sha2::Sha256::digest(format!("loa-dashboard-cookie:{TOKEN}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (status, _, _) = get(
        &format!("{base}/"),
        None,
        Some(&format!("loa_dashboard={forged}")),
    )
    .await;
    assert_eq!(status, 303, "a forged cookie is sent to the login page");
    // Twenty wrong tokens in a minute, by the form and by Bearer: then even the right one is
    // refused unseen, while the browser already logged in keeps its pages.
    for i in 0..20 {
        let status = if i % 2 == 0 {
            get(&format!("{base}/login?token=sai-{i}"), None, None)
                .await
                .0
        } else {
            get(&format!("{base}/"), Some(&format!("sai-{i}")), None)
                .await
                .0
        };
        assert!(status == 401, "attempt {i}: {status}");
    }
    let (status, _, body) = get(&format!("{base}/login?token={TOKEN}"), None, None).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Thử sai quá nhiều lần"), "{body}");
    assert_eq!(get(&format!("{base}/"), Some(TOKEN), None).await.0, 429);
    assert_eq!(get(&format!("{base}/"), None, Some(&cookie)).await.0, 200);
    // Guesses are counted by client: behind a proxy on this machine, the operator's own address
    // (the last the proxy put in X-Forwarded-For) still logs in, and the guesser's stays locked
    // whatever address it puts first.
    let via_proxy = |from: &str, token: &str| {
        client()
            .get(format!("{base}/login?token={token}"))
            .header("x-forwarded-for", from)
            .send()
    };
    let resp = via_proxy("203.0.113.7", TOKEN).await.expect("login");
    assert_eq!(resp.status(), 303, "another client logs in");
    assert!(resp.headers().contains_key("set-cookie"));
    for i in 0..20 {
        let status = via_proxy("198.51.100.1", &format!("sai-{i}"))
            .await
            .expect("guess")
            .status();
        assert_eq!(status, 401, "attempt {i}");
    }
    let status = via_proxy("203.0.113.7, 198.51.100.1", TOKEN)
        .await
        .expect("guess")
        .status();
    assert_eq!(status, 429, "the guesser, whatever it put first");
    let status = via_proxy("203.0.113.7", TOKEN)
        .await
        .expect("login")
        .status();
    assert_eq!(status, 303, "the operator still logs in");
}
