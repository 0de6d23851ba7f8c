//! The API endpoint a deploy through the edge prints, made the one that answers: CloudFormation's
//! `DescribeStacks` (what `cdk deploy` and `cdklocal deploy` read their outputs from) names
//! moto's endpoint, `https://<id>.execute-api.<region>.amazonaws.com/None/` (moto ignores the
//! stage), which nothing serves. The edge rewrites each such URL to itself, under the stage it
//! serves, as LocalStack's edge does; `.sandbox/outputs.json` holds the same URL.

use crate::discover::DEFAULT_STAGE;

/// `text` with every API Gateway endpoint URL rewritten to `edge` (`http://127.0.0.1:4599`),
/// or `None` when there is none.
pub fn rewrite_api_urls(text: &str, edge: &str) -> Option<String> {
    const SCHEME: &str = "https://";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find(SCHEME) {
        out.push_str(&rest[..at]);
        let url = &rest[at..];
        let host_end = url[SCHEME.len()..]
            .find(|c: char| c == '/' || c == '<' || c == '"' || c.is_whitespace())
            .map_or(url.len(), |i| i + SCHEME.len());
        let host = &url[SCHEME.len()..host_end];
        let is_api = host.contains(".execute-api.") && url[host_end..].starts_with('/');
        if !is_api {
            out.push_str(SCHEME);
            rest = &url[SCHEME.len()..];
            continue;
        }
        let path = &url[host_end + 1..];
        let stage_end = path
            .find(|c: char| c == '/' || c == '<' || c == '"' || c.is_whitespace())
            .unwrap_or(path.len());
        let stage = match &path[..stage_end] {
            "" | "None" => DEFAULT_STAGE,
            stage => stage,
        };
        out.push_str(edge.trim_end_matches('/'));
        out.push('/');
        out.push_str(stage);
        rest = &path[stage_end..];
        changed = true;
    }
    out.push_str(rest);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_s_endpoints_become_the_edge_s() {
        let xml = "<Outputs><member><OutputKey>ApiGatewayMethodEndpoint</OutputKey>\
                   <OutputValue>https://a1b2c3.execute-api.us-east-1.amazonaws.com/None/</OutputValue>\
                   </member><member><OutputKey>ApiEndpoint4F160690</OutputKey><OutputValue>\
                   https://a1b2c3.execute-api.us-east-1.amazonaws.com/prod/</OutputValue></member>\
                   <member><OutputValue>https://sqs.us-east-1.amazonaws.com/1/q</OutputValue></member></Outputs>";
        let rewritten = rewrite_api_urls(xml, "http://127.0.0.1:4599").unwrap();
        assert_eq!(
            rewritten.matches("http://127.0.0.1:4599/prod/").count(),
            2,
            "{rewritten}"
        );
        assert!(!rewritten.contains("execute-api"), "{rewritten}");
        assert!(
            rewritten.contains("https://sqs.us-east-1.amazonaws.com/1/q"),
            "other URLs stay"
        );
        let json = r#"{"OutputValue":"https://x.execute-api.eu-west-1.amazonaws.com/v2"}"#;
        assert_eq!(
            rewrite_api_urls(json, "http://localhost:4566/").unwrap(),
            r#"{"OutputValue":"http://localhost:4566/v2"}"#
        );
        assert_eq!(rewrite_api_urls("no endpoints https://", "http://e"), None);
    }
}
