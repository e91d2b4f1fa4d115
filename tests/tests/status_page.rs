//! The operator's status pages (issue #13, point 6), loaded from a running network in headless
//! Chromium (from Debian's packages; `.ci/run` installs it when missing): a supernode's page
//! shows its role, clients against capacity and the members it sees, and shows a supernode
//! killed with SIGKILL as down within the membership's detection time; the auth-server's page
//! lists the announced supernodes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{online, wait_for_overlay, Network};
use switchboard_client::profile::Profile;

/// Chromium's binary, from Debian's `chromium` package.
const CHROMIUM: &str = "chromium";

/// The page at `url` as headless Chromium renders it (`--dump-dom`: the DOM after loading).
fn dom(url: &str, profile: &Path) -> String {
    let out = Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!("{CHROMIUM} could not run ({e}); install Debian's chromium package")
        });
    assert!(
        out.status.success(),
        "{CHROMIUM}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The row of the members table that names `short`, as text.
fn row_of<'a>(page: &'a str, short: &str) -> Option<&'a str> {
    page.split("<tr>").find(|row| row.contains(short))
}

#[test]
fn a_supernodes_status_page_shows_a_killed_member_as_down_within_the_detection_time() {
    let network = Network::new(&["alice"], &["sn1", "sn2", "sn3"]);
    let sn1 = network.supernode("sn1", &["--capacity", "40"]);
    let sn2 = network.supernode("sn2", &[]);
    let sn3 = network.supernode("sn3", &[]);
    wait_for_overlay(&[&sn1, &sn2, &sn3], 3);
    let alice = network.login("alice");
    let mut alice_online = online(&alice);
    alice_online.expect("online via", Duration::from_secs(15));
    let short = |name: &str| {
        Profile::new(&network.path(name))
            .node_key()
            .unwrap()
            .node_id()
            .short()
    };
    let browser = tempfile::tempdir().unwrap();
    let url = format!("http://{}/status", sn1.metrics_addr().unwrap());

    let page = dom(&url, browser.path());
    assert!(page.contains("Switchboard supernode"), "{page}");
    assert!(page.contains("of a capacity of 40"), "{page}");
    assert!(page.contains("Overlay members (3 live)"), "{page}");
    let sn3_short = short("sn3");
    let row = row_of(&page, &sn3_short).expect("sn3 is listed");
    assert!(row.contains("alive"), "{row}");

    // SIGKILL sn3: sn1's page shows it down within the detection time (a probe period of 1 s,
    // a probe timeout, then 3 s of suspicion; 15 s allows for a loaded 2-core machine).
    let killed = Instant::now();
    sn3.kill9();
    let deadline = killed + Duration::from_secs(15);
    let shown = loop {
        let page = dom(&url, browser.path());
        if row_of(&page, &sn3_short).is_some_and(|row| row.contains("class=\"down\"")) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "sn3 not shown down after 15 s: {page}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    println!("sn3 shown down {:?} after its SIGKILL", killed.elapsed());
    assert!(shown.contains("Overlay members (2 live)"), "{shown}");
    assert!(
        shown.contains("declared down"),
        "the event is listed: {shown}"
    );
    // As a person sees it: a screenshot (the README's comes from this test, with
    // SWITCHBOARD_STATUS_SCREENSHOT=docs/status-supernode.png).
    let png = browser.path().join("status.png");
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg("--window-size=1100,720")
        .arg(format!(
            "--user-data-dir={}",
            browser.path().join("shot").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    if let Ok(keep) = std::env::var("SWITCHBOARD_STATUS_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }

    // The auth-server's page lists the supernodes that announced themselves.
    let auth = format!("http://{}/status", network.auth.metrics_addr().unwrap());
    let page = dom(&auth, browser.path());
    assert!(page.contains("Switchboard auth-server"), "{page}");
    assert!(page.contains("Announced supernodes"), "{page}");
    for name in ["sn1", "sn2"] {
        assert!(page.contains(&short(name)), "{name} not listed: {page}");
    }
    drop(sn2);
}
