//! A real browser for the console tests: Debian's Chromium, headless, driven over WebDriver by
//! its `chromedriver` on loopback (`.ci/run` installs both). Each `Browser` has its own driver
//! process and empty profile; dropping it ends both.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Where Debian puts the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with a window of `width` x `height`.
    pub fn start(width: u32, height: u32) -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: the console tests drive a real browser; install Debian's `chromium` and `chromium-driver` (.ci/run does)"
            );
        }
        let port = crate::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("a profile directory");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                // No background networking: this machine's network is closed, and the console
                // must make no request but to its own server.
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match rt.block_on(ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url)) {
                Ok(c) => break c,
                Err(e) if t.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("no WebDriver session with {CHROMIUM} through {CHROMEDRIVER}: {e}"),
            }
        };
        let b = Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
        };
        b.resize(width, height);
        b
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Sets the size of the page's viewport (the window is made to fit it).
    pub fn resize(&self, width: u32, height: u32) {
        self.rt
            .block_on(self.c().set_window_size(width, height))
            .expect("the window resizes");
        // The window's frame takes some room: grow it until the viewport is as asked.
        let inner = self.js("return [window.innerWidth, window.innerHeight]", vec![]);
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (w, h) != (width, height) && w > 0 && h > 0 {
            self.rt
                .block_on(self.c().set_window_size(width * 2 - w, height * 2 - h))
                .expect("the window resizes");
        }
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).expect("the page opens");
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.rt
            .block_on(self.c().execute(script, args))
            .unwrap_or_else(|e| panic!("the script failed: {e}\n{script}"))
    }

    /// The text of the first element matching `css`, if there is one.
    pub fn text(&self, css: &str) -> Option<String> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
            vec![css.into()],
        )
        .as_str()
        .map(str::to_owned)
    }

    /// An attribute of the first element matching `css`.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null",
            vec![css.into(), name.into()],
        )
        .as_str()
        .map(str::to_owned)
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.js(
            "return document.querySelectorAll(arguments[0]).length",
            vec![css.into()],
        )
        .as_u64()
        .unwrap_or(0) as usize
    }

    /// Waits (at most `timeout`) for `f` to give something; panics with `what` otherwise.
    pub fn wait<T>(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Browser) -> Option<T>) -> T {
        let t = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if t.elapsed() > timeout {
                let error = self.text("#error").unwrap_or_default();
                panic!(
                    "waited {timeout:?} for {what}; the page's error area says {error:?}; the page:\n{}",
                    self.text("main").unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for an element matching `css` to be there.
    pub fn wait_for(&self, css: &str) {
        self.wait(&format!("`{css}`"), Duration::from_secs(15), |b| {
            (b.count(css) > 0).then_some(())
        });
    }

    /// Clicks the element matching `css` (as a person would: it must be there and visible).
    pub fn click(&self, css: &str) {
        self.wait_for(css);
        self.rt
            .block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                e.click().await
            })
            .unwrap_or_else(|e| panic!("cannot click `{css}`: {e}"));
    }

    /// Types `text` into the element matching `css`, after clearing it.
    pub fn fill(&self, css: &str, text: &str) {
        self.wait_for(css);
        self.rt
            .block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                e.clear().await?;
                e.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("cannot type into `{css}`: {e}"));
    }

    /// Sets a textarea's or input's whole value at once, as a paste would (typing a long spec key
    /// by key is slow), and tells the page it changed.
    pub fn paste(&self, css: &str, text: &str) {
        self.wait_for(css);
        self.js(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
             e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![css.into(), text.into()],
        );
    }

    /// Chooses the option of value `value` in the select matching `css`.
    pub fn select(&self, css: &str, value: &str) {
        self.wait(&format!("option {value:?} in `{css}`"), Duration::from_secs(15), |b| {
            let n = b.js(
                "const s = document.querySelector(arguments[0]); return s ? [...s.options].filter(o => o.value === arguments[1]).length : 0",
                vec![css.into(), value.into()],
            );
            (n.as_u64() == Some(1)).then_some(())
        });
        self.rt
            .block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                e.select_by_value(value).await
            })
            .unwrap_or_else(|e| panic!("cannot choose {value:?} in `{css}`: {e}"));
    }

    /// Saves a PNG of the viewport at `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        let png = self.rt.block_on(self.c().screenshot()).expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot directory");
        }
        std::fs::write(path, png).expect("the screenshot is written");
    }

    /// The browser's renderer processes (the pages' processes), for CPU figures: the
    /// descendants of this browser's driver that run `--type=renderer`.
    pub fn renderer_pids(&self) -> Vec<u32> {
        let mut parent = std::collections::HashMap::new();
        let mut cmd = std::collections::HashMap::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The parent is the 2nd field after the command name, which is in parentheses.
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent.insert(pid, ppid);
            }
            cmd.insert(pid, std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default());
        }
        let root = self.driver.id();
        let descends = |mut p: u32| {
            for _ in 0..16 {
                match parent.get(&p) {
                    Some(&pp) if pp == root => return true,
                    Some(&pp) if pp > 1 => p = pp,
                    _ => return false,
                }
            }
            false
        };
        cmd.iter()
            .filter(|(pid, c)| descends(**pid) && String::from_utf8_lossy(c).contains("--type=renderer"))
            .map(|(pid, _)| *pid)
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), c.close()).await });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
