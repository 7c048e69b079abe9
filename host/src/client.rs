//! The CLI client: `sluice udf ...` and `sluice job ...` talk to a running `sluice serve` over
//! its REST API, with a token from `--token` or `SLUICE_TOKEN`, and print readable tables.
//! API errors are shown as `code: message` and make the command fail.

use anyhow::{Result, bail};
use serde_json::Value;

/// Where the server is and who is asking.
#[derive(Clone, Debug)]
pub struct Client {
    /// `http://127.0.0.1:8080`.
    pub server: String,
    /// The API token.
    pub token: String,
}

impl Client {
    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server.trim_end_matches('/'))
    }

    fn finish(&self, mut resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
        let status = resp.status().as_u16();
        let bytes = resp.body_mut().with_config().limit(64 << 20).read_to_vec()?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
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
            .call()?;
        self.finish(resp)
    }

    /// `POST path` with a body.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Value> {
        let resp = Self::agent()
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .send(body)?;
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

/// `sluice job create SPEC`.
pub fn job_create(c: &Client, spec: &std::path::Path) -> Result<String> {
    let text = std::fs::read(spec).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", spec.display()))?;
    let j = c.post("/jobs", "application/json", &text)?;
    Ok(table(&JOB_HEADER, &[job_row(&j)]))
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

/// `sluice job swap ID STAGE UDF`.
pub fn job_swap(c: &Client, id: i64, stage: usize, udf: &str) -> Result<String> {
    let body = serde_json::json!({ "stage": stage, "udf": udf }).to_string();
    let r = c.post(&format!("/jobs/{id}/swap"), "application/json", body.as_bytes())?;
    Ok(format!(
        "stage {} runs {} from batch {} on",
        cell(&r["stage"]),
        cell(&r["udf"]),
        cell(&r["effective_batch"])
    ))
}

/// `sluice job output ID`: the recent output records.
pub fn job_output(c: &Client, id: i64) -> Result<String> {
    let out = c.get(&format!("/jobs/{id}/output"))?;
    let rows: Vec<Vec<String>> = out
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| vec![cell(&r["batch"]), cell(&r["key"]), cell(&r["value"])])
        .collect();
    Ok(table(&["BATCH", "KEY", "VALUE"], &rows))
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
