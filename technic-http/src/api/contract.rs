//! The served OpenAPI document: what `utoipa` generates from the handlers, plus what a derive cannot say.
//!
//! - the `bearer` security scheme, required (with 401 documented) on every state-changing operation of a
//!   server started with an admin token; a server without one requires nothing (its admin routes answer
//!   403 whatever is sent, so no credential would open them);
//! - the constraints the handlers enforce on values taken from the core's own lists: symbol and screen
//!   name patterns, preset names, sort keys, series names — generated here from the same constants the
//!   handlers check, so the document cannot drift from them.
//!
//! Architecture invariant: every status a handler or a layer can answer is in the document, and every
//! rule that refuses a value is stated in its schema when JSON Schema can state it. A screen
//! expression's grammar is the one rule it cannot: a well-typed but unparsable `where` is a 422.

use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::state::ServerConfig;

/// A symbol as the API takes it: 1–16 letters, digits, `.` or `-` (read upper-cased).
pub const SYMBOL_PATTERN: &str = "^[A-Za-z0-9.-]{1,16}$";

/// A saved screen's name: 1–64 letters, digits, `-` or `_`.
pub const SCREEN_NAME_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// Dates the backtests take: years 1900 to 2199.
pub const BACKTEST_DATE_PATTERN: &str = "^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

/// The document `/openapi.json` serves for a server with `config`.
pub fn document(config: &ServerConfig) -> Value {
    let mut doc = serde_json::to_value(super::ops::ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    security(&mut doc, config.admin_token.is_some());
    constraints(&mut doc);
    doc
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// Declares the scheme, and requires it where the server does.
fn security(doc: &mut Value, token_configured: bool) {
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The server's admin token (`technic serve --admin-token` or `TECHNIC_ADMIN_TOKEN`). \
                With one configured, every POST, PUT, PATCH and DELETE needs it; reads never do."
        }
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            if op.get("requestBody").is_some() {
                // The body limit and the JSON-only rule of the guard.
                for (status, why) in [
                    ("413", "Request body too large"),
                    ("415", "Request body not JSON"),
                ] {
                    if op["responses"].get(status).is_none() {
                        op["responses"][status] = error_response(why);
                    }
                }
            }
            // The same methods the guard asks the token for.
            let changes = axum::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .is_ok_and(|m| crate::auth::changes_state(&m));
            if !changes {
                continue;
            }
            let responses = &mut op["responses"];
            // Refused by the browser guard: a cross-origin state change, or a server whose token is empty.
            if responses.get("403").is_none() {
                responses["403"] = error_response("Cross-origin request, or admin routes disabled");
            }
            // The client's write budget (`writes_per_minute_per_client`), with `Retry-After`.
            if responses.get("429").is_none() {
                responses["429"] =
                    error_response("Too many changes from this client this minute (`Retry-After`)");
            }
            if token_configured {
                op["security"] = json!([{"bearer": []}]);
                op["responses"]["401"] =
                    error_response("Missing or wrong admin token (`WWW-Authenticate: Bearer`)");
            }
        }
    }
}

/// The value rules of the handlers that a derive cannot state.
fn constraints(doc: &mut Value) {
    let symbol = json!({"type": "string", "pattern": SYMBOL_PATTERN});
    let sort_key = json!({"type": ["string", "null"], "pattern": sort_key_pattern()});
    let where_ = json!({"type": ["string", "null"], "minLength": 1,
        "maxLength": technic_core::screen::parse::MAX_SOURCE});
    let preset = json!({"type": ["string", "null"], "pattern": preset_pattern()});
    let screen_name = json!({"type": ["string", "null"], "pattern": SCREEN_NAME_PATTERN});
    let plan = |max: f64| json!({"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": max});

    // Paths.
    for path in [
        "/api/v1/symbols/{symbol}",
        "/api/v1/symbols/{symbol}/bars",
        "/api/v1/symbols/{symbol}/series",
        "/api/v1/symbols/{symbol}/explain",
    ] {
        set_param(doc, path, "get", "symbol", &symbol);
    }
    set_param(
        doc,
        "/api/v1/screens/{name}",
        "delete",
        "name",
        &json!({"type": "string", "pattern": SCREEN_NAME_PATTERN}),
    );
    set_param(
        doc,
        "/api/v1/symbols/{symbol}/series",
        "get",
        "names",
        &json!({"type": "string", "pattern": series_pattern()}),
    );
    let result_sort = json!({"type": "string", "enum": result_sorts()});
    set_param(doc, "/api/v1/scans/{id}/results", "get", "sort", &result_sort);
    set_param(doc, "/api/v1/scans/{id}/results.csv", "get", "sort", &result_sort);
    for (name, max) in [("account", 1e12), ("risk_pct", 100.0), ("reward_risk", 100.0)] {
        set_param(
            doc,
            "/api/v1/symbols/{symbol}/explain",
            "get",
            name,
            &json!({"type": "number", "exclusiveMinimum": 0, "maximum": max}),
        );
    }

    // An absent body starts a scan with the defaults.
    doc["paths"]["/api/v1/scans"]["post"]["requestBody"]["required"] = json!(false);

    // Bodies.
    let schemas = &mut doc["components"]["schemas"];
    for body in ["ScanCreate", "BacktestCreate", "ScreenCreate"] {
        let props = &mut schemas[body]["properties"];
        props["where"] = merge(&props["where"], &where_);
        props["sort"] = merge(&props["sort"], &sort_key);
        props["preset"] = merge(&props["preset"], &preset);
        if body != "ScreenCreate" {
            props["screen"] = merge(&props["screen"], &screen_name);
            props["symbols"]["items"] = symbol.clone();
            props["symbols"]["maxItems"] = json!(super::scans::MAX_SYMBOLS);
            props["benchmark"] = merge(
                &props["benchmark"],
                &json!({"type": ["string", "null"], "pattern": SYMBOL_PATTERN}),
            );
        }
    }
    let scan = &mut schemas["ScanCreate"]["properties"];
    scan["account"] = merge(&scan["account"], &plan(1e12));
    scan["risk_pct"] = merge(&scan["risk_pct"], &plan(100.0));
    scan["reward_risk"] = merge(&scan["reward_risk"], &plan(100.0));
    let filters = &mut schemas["FiltersDto"]["properties"];
    for name in ["min_price", "min_dollar_volume"] {
        filters[name] = merge(&filters[name], &json!({"minimum": 0}));
    }
    let screen = &mut schemas["ScreenCreate"];
    screen["properties"]["name"] = json!({"type": "string", "pattern": SCREEN_NAME_PATTERN,
        "description": "Its name: 1–64 letters, digits, `-` or `_`."});
    // At least one of `where`, `preset` and `sort` (null counts as absent).
    screen["anyOf"] = json!(
        ["where", "preset", "sort"]
            .iter()
            .map(|k| json!({"required": [k], "properties": {*k: {"type": "string"}}}))
            .collect::<Vec<_>>()
    );
    let backtest = &mut schemas["BacktestCreate"]["properties"];
    for name in ["from", "to"] {
        backtest[name] = merge(&backtest[name], &json!({"pattern": BACKTEST_DATE_PATTERN}));
    }
    backtest["horizons"]["maxItems"] = json!(8);
    backtest["horizons"]["items"] = json!({"type": "integer", "minimum": 1,
        "maximum": technic_core::backtest::MAX_HORIZON});
}

/// `base` with the keys of `extra` set over it.
fn merge(base: &Value, extra: &Value) -> Value {
    let mut out = base.clone();
    if let (Some(o), Some(e)) = (out.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    } else {
        out = extra.clone();
    }
    out
}

/// Sets the schema of parameter `name` of `method path` (keeping its description).
fn set_param(doc: &mut Value, path: &str, method: &str, name: &str, schema: &Value) {
    if let Some(params) = doc["paths"][path][method]["parameters"].as_array_mut() {
        for p in params.iter_mut().filter(|p| p["name"] == name) {
            p["schema"] = merge(&p["schema"], schema);
        }
    }
}

/// A pattern matching `name` whatever its letters' case.
fn any_case(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else if c == '_' {
                "[_-]".to_owned()
            } else {
                regex_escape(c)
            }
        })
        .collect()
}

fn regex_escape(c: char) -> String {
    if "\\^$.|?*+()[]{}-/".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// `FIELD[:asc|desc]` over the numeric fields, any case (what `SortKey::parse` takes).
fn sort_key_pattern() -> String {
    let fields: Vec<String> = technic_core::screen::NUMERIC_FIELDS
        .iter()
        .map(|(n, _)| any_case(n).replace("[_-]", "_"))
        .collect();
    format!("^({})(:([aA][sS][cC]|[dD][eE][sS][cC]))?$", fields.join("|"))
}

/// The preset names, any case, `-` for `_` (what `presets::find` takes).
fn preset_pattern() -> String {
    let names: Vec<String> = technic_core::screen::PRESETS
        .iter()
        .map(|p| any_case(p.name))
        .collect();
    format!("^({})$", names.join("|"))
}

/// 1 to 15 comma-separated series names.
fn series_pattern() -> String {
    let names = technic_core::indicators::SERIES_NAMES;
    let one = format!("({})", names.join("|"));
    format!("^{one}(,{one}){{0,{}}}$", names.len() - 1)
}

/// Every sort the results pages take: rank, the text columns, the numbers; `-` first for descending.
pub fn result_sorts() -> Vec<String> {
    let mut keys: Vec<&str> = vec!["rank", "symbol", "name", "sector", "industry", "signal"];
    keys.extend(crate::dto::SORT_NUMBERS);
    keys.extend(
        technic_core::indicators::INDICATOR_NAMES
            .iter()
            .filter(|n| !crate::dto::SORT_NUMBERS.contains(n)),
    );
    keys.iter()
        .flat_map(|k| [(*k).to_owned(), format!("-{k}")])
        .collect()
}
