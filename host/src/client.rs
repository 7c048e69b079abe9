//! The CLI client: `sluice udf ...`, `sluice job ...` and `sluice tenant ...` talk to a running
//! `sluice serve` over its REST API (arguments and token lookup in `commands.rs`) and print
//! readable tables. API errors are shown as `code (status): message` and make the command fail;
//! a server that cannot be reached and a refused token are said in words.

pub mod commands;

use anyhow::{Result, bail};
use serde_json::Value;

/// Where the server is and who is asking.
#[derive(Clone, Debug)]
pub struct Client {
    /// `http://127.0.0.1:8080`.
    pub server: String,
    /// The API token.
    pub token: String,
    /// Where the token came from (for the message of a 401).
    pub token_source: String,
}

impl Client {
    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server.trim_end_matches('/'))
    }

    fn unreachable(&self, e: ureq::Error) -> anyhow::Error {
        anyhow::anyhow!(
            "cannot reach the server at {} ({e}); is `sluice serve` running there? (--server or SLUICE_SERVER say where it is)",
            self.server
        )
    }

    fn finish(&self, resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
        let mut resp = resp.map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let bytes = resp.body_mut().with_config().limit(64 << 20).read_to_vec()?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status == 401 {
            let shown: String = self.token.chars().take(6).collect();
            bail!(
                "the server at {} refused the token {shown}... from {}: it is not a token of this server. The admin's \
                 token is in the server's DATA_DIR/admin-token; a tenant's is printed once by `sluice tenant create NAME`",
                self.server,
                self.token_source
            );
        }
        if status >= 400 {
            let code = body["error"]["code"].as_str().unwrap_or("error");
            let message = body["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string());
            bail!("{code} ({status}): {message}");
        }
        Ok(body)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Value> {
        let resp = Self::agent()
            .get(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call();
        self.finish(resp)
    }

    /// `POST path` with a body.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value> {
        let resp = Self::agent()
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .send(body);
        self.finish(resp)
    }
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn udfs_of(m: &Value) -> String {
    m["udfs"]
        .as_array()
        .map(|u| {
            u.iter()
                .map(|x| format!("{} ({})", cell(&x["name"]), cell(&x["kind"])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `sluice udf upload NAME FILE`.
pub fn udf_upload(c: &Client, name: &str, file: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let m = c.post(&format!("/udfs/{name}"), "application/wasm", &bytes)?;
    if let Some(note) = m["note"].as_str() {
        return Ok(format!("{note} (sha256 {}): {}", cell(&m["sha256"]), udfs_of(&m)));
    }
    Ok(format!(
        "uploaded {}@{} (sha256 {}): {}",
        cell(&m["name"]),
        cell(&m["version"]),
        cell(&m["sha256"]),
        udfs_of(&m)
    ))
}

/// `sluice udf list`.
pub fn udf_list(c: &Client) -> Result<String> {
    let list = c.get("/udfs")?;
    let rows: Vec<Vec<String>> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            vec![
                cell(&m["name"]),
                cell(&m["version"]),
                cell(&m["size_bytes"]),
                udfs_of(m),
            ]
        })
        .collect();
    Ok(table(&["NAME", "VERSION", "BYTES", "UDFS"], &rows))
}

fn job_row(j: &Value) -> Vec<String> {
    let udfs = j["udfs"]
        .as_array()
        .map(|u| {
            u.iter()
                .map(|x| format!("{}@{}", cell(&x["module"]), cell(&x["version"])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    vec![
        cell(&j["id"]),
        cell(&j["name"]),
        cell(&j["status"]),
        udfs,
        cell(&j["last_error"]),
    ]
}

const JOB_HEADER: [&str; 5] = ["ID", "NAME", "STATUS", "UDFS", "LAST ERROR"];

/// `sluice job create SPEC` (YAML for `.yaml` and `.yml` files).
pub fn job_create(c: &Client, spec: &std::path::Path) -> Result<String> {
    let text = std::fs::read(spec).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", spec.display()))?;
    let yaml = matches!(spec.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    let j = c.post(
        "/jobs",
        if yaml { "application/yaml" } else { "application/json" },
        &text,
    )?;
    let id = cell(&j["id"]);
    Ok(format!(
        "{}

created job {id}; start it with `sluice job start {id}`",
        table(&JOB_HEADER, &[job_row(&j)])
    ))
}

/// `sluice job list`.
pub fn job_list(c: &Client) -> Result<String> {
    let list = c.get("/jobs")?;
    Ok(table(
        &JOB_HEADER,
        &list.as_array().into_iter().flatten().map(job_row).collect::<Vec<_>>(),
    ))
}

/// `sluice job status ID`: the job and its last batches.
pub fn job_status(c: &Client, id: i64) -> Result<String> {
    let j = c.get(&format!("/jobs/{id}"))?;
    let batches = c.get(&format!("/jobs/{id}/batches"))?;
    let recent: Vec<Vec<String>> = batches
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .take(10)
        .map(|b| {
            vec![
                cell(&b["batch_id"]),
                cell(&b["records_in"]),
                cell(&b["records_out"]),
                format!("{:.2}", b["processing_ms"].as_f64().unwrap_or(0.0)),
                format!("{:.2}", b["scheduling_delay_ms"].as_f64().unwrap_or(0.0)),
            ]
        })
        .collect();
    Ok(format!(
        "{}\n\n{}",
        table(&JOB_HEADER, &[job_row(&j)]),
        table(&["BATCH", "IN", "OUT", "PROCESSING MS", "DELAY MS"], &recent)
    ))
}

/// `sluice job start|stop ID`.
pub fn job_action(c: &Client, id: i64, action: &str) -> Result<String> {
    let j = c.post(&format!("/jobs/{id}/{action}"), "application/json", b"")?;
    Ok(table(&JOB_HEADER, &[job_row(&j)]))
}

/// The index of `stage` in a job's spec: a number is the index; a name is the function the
/// stage calls (its own, or its reducer's).
fn stage_index(job: &Value, stage: &str) -> Result<usize> {
    if let Ok(i) = stage.parse() {
        return Ok(i);
    }
    let stages = job["spec"]["stages"].as_array().cloned().unwrap_or_default();
    let calls = |s: &Value| -> Option<String> {
        let op = s.as_object()?.values().next()?;
        op["function"]
            .as_str()
            .or(op["reduce"]["function"].as_str())
            .map(str::to_owned)
    };
    let found: Vec<usize> = stages
        .iter()
        .enumerate()
        .filter(|(_, s)| calls(s).as_deref() == Some(stage))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [i] => Ok(*i),
        [] => bail!(
            "no stage of job {} calls `{stage}`; its UDF stages: {}",
            cell(&job["id"]),
            stages
                .iter()
                .enumerate()
                .filter_map(|(i, s)| calls(s).map(|f| format!("{i} ({f})")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        many => bail!("stages {many:?} all call `{stage}`: give the stage's index"),
    }
}

/// `sluice job swap ID STAGE UDF` (STAGE: an index, or the function the stage calls).
pub fn job_swap(c: &Client, id: i64, stage: &str, udf: &str) -> Result<String> {
    let stage = stage_index(&c.get(&format!("/jobs/{id}"))?, stage)?;
    let body = serde_json::json!({ "stage": stage, "udf": udf }).to_string();
    let r = c.post(&format!("/jobs/{id}/swap"), "application/json", body.as_bytes())?;
    Ok(format!(
        "stage {} runs {} from batch {} on",
        cell(&r["stage"]),
        cell(&r["udf"]),
        cell(&r["effective_batch"])
    ))
}

fn output_row(r: &Value) -> Vec<String> {
    vec![cell(&r["batch"]), cell(&r["key"]), cell(&r["value"])]
}

/// `sluice job output ID`: the newest `last` output records the server keeps, newest last; with
/// `follow`, then the new ones as they come (from the live stream) until it ends.
pub fn job_output(c: &Client, id: i64, last: usize, follow: bool) -> Result<String> {
    let out = c.get(&format!("/jobs/{id}/output"))?;
    let all = out.as_array().cloned().unwrap_or_default();
    let skipped = all.len().saturating_sub(last);
    let rows: Vec<Vec<String>> = all[skipped..].iter().map(output_row).collect();
    let mut text = table(&["BATCH", "KEY", "VALUE"], &rows);
    if skipped > 0 {
        text = format!("({skipped} older records kept by the server are skipped; --last N shows more)\n{text}");
    }
    if !follow {
        return Ok(text);
    }
    {
        use std::io::Write;
        if writeln!(std::io::stdout(), "{text}").is_err() {
            return Ok(String::new()); // stdout closed (`| head`): done.
        }
    }
    follow_output(c, id)?;
    Ok(String::new())
}

/// Prints the job's live output (Server-Sent Events) as it comes, until the stream ends.
fn follow_output(c: &Client, id: i64) -> Result<()> {
    use std::io::{BufRead, Write};
    let resp = Client::agent()
        .get(&c.url(&format!("/jobs/{id}/output/stream")))
        .header("Authorization", &format!("Bearer {}", c.token))
        .call()
        .map_err(|e| c.unreachable(e))?;
    if resp.status().as_u16() >= 400 {
        c.finish(Ok(resp))?;
        return Ok(());
    }
    let mut event = String::new();
    let mut stdout = std::io::stdout().lock();
    for line in std::io::BufReader::new(resp.into_body().into_reader()).lines() {
        let line = line?;
        if let Some(e) = line.strip_prefix("event:") {
            event = e.trim().to_owned();
        } else if let Some(data) = line.strip_prefix("data:") {
            let data = data.trim();
            let shown = match event.as_str() {
                "record" => serde_json::from_str::<Value>(data)
                    .map(|r| output_row(&r).join("  "))
                    .unwrap_or_else(|_| data.to_owned()),
                "lagged" => format!("({data} records missed: this reader was too slow)"),
                _ => continue,
            };
            if writeln!(stdout, "{shown}").and_then(|_| stdout.flush()).is_err() {
                return Ok(()); // stdout closed (`| head`): done.
            }
        }
    }
    eprintln!("(the job's run ended: no more output)");
    Ok(())
}

/// `sluice job logs ID`: the UDF log lines and errors, then the refused records.
pub fn job_logs(c: &Client, id: i64) -> Result<String> {
    let logs = c.get(&format!("/jobs/{id}/logs"))?;
    let rows: Vec<Vec<String>> = logs["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            vec![
                cell(&l["batch"]),
                cell(&l["stage"]),
                cell(&l["udf"]),
                cell(&l["level"]),
                cell(&l["message"]),
            ]
        })
        .collect();
    Ok(format!(
        "{}\n{} lines in all, {} dropped to stay within udf_log_bytes_max\n\n{}",
        table(&["BATCH", "STAGE", "UDF", "LEVEL", "MESSAGE"], &rows),
        cell(&logs["total"]),
        cell(&logs["dropped"]),
        job_dead_letters(c, id)?
    ))
}

/// `sluice tenant create NAME` (admin): the tenant and its first token.
pub fn tenant_create(c: &Client, name: &str) -> Result<String> {
    let body = serde_json::json!({ "name": name }).to_string();
    let t = c.post("/tenants", "application/json", body.as_bytes())?;
    Ok(format!(
        "created tenant {} (id {}); its API token, shown this once:\n{}",
        cell(&t["tenant"]["name"]),
        cell(&t["tenant"]["id"]),
        cell(&t["token"])
    ))
}

/// `sluice tenant list` (admin).
pub fn tenant_list(c: &Client) -> Result<String> {
    let list = c.get("/tenants")?;
    let rows: Vec<Vec<String>> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            vec![
                cell(&t["id"]),
                cell(&t["name"]),
                cell(&t["is_admin"]),
                t["quota_overrides"].to_string(),
            ]
        })
        .collect();
    Ok(table(&["ID", "NAME", "ADMIN", "QUOTAS SET"], &rows))
}

/// `sluice tenant token ID` (admin): another token of a tenant.
pub fn tenant_token(c: &Client, id: i64) -> Result<String> {
    let t = c.post(&format!("/tenants/{id}/tokens"), "application/json", b"")?;
    Ok(format!(
        "a new API token of tenant {id}, shown this once:\n{}",
        cell(&t["token"])
    ))
}

/// `sluice job checkpoints ID`.
pub fn job_checkpoints(c: &Client, id: i64) -> Result<String> {
    let out = c.get(&format!("/jobs/{id}/checkpoints"))?;
    let rows: Vec<Vec<String>> = out
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                cell(&r["id"]),
                cell(&r["batch_id"]),
                cell(&r["time_ms"]),
                cell(&r["bytes"]),
                format!("{:.1}", r["write_ms"].as_f64().unwrap_or_default()),
            ]
        })
        .collect();
    Ok(table(&["ID", "BATCH", "TIME_MS", "BYTES", "WRITE_MS"], &rows))
}

/// `sluice job dead-letters ID`.
pub fn job_dead_letters(c: &Client, id: i64) -> Result<String> {
    let out = c.get(&format!("/jobs/{id}/dead-letters"))?;
    let rows: Vec<Vec<String>> = out["dead_letters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                cell(&r["batch_id"]),
                cell(&r["stage"]),
                cell(&r["value"]),
                cell(&r["error"]),
            ]
        })
        .collect();
    Ok(format!(
        "{}\n{} refused in all, {} dropped to stay within dead_letter_bytes_max",
        table(&["BATCH", "STAGE", "RECORD", "ERROR"], &rows),
        cell(&out["total"]),
        cell(&out["dropped"])
    ))
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn tables_pad_columns_to_their_widest_cell() {
        let t = table(
            &["ID", "NAME"],
            &[vec!["1".into(), "visits".into()], vec!["10".into(), "x".into()]],
        );
        assert_eq!(t, "ID  NAME\n1   visits\n10  x");
    }
}
