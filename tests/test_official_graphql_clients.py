"""Official clients work against the sandbox on a real loopback port: PyGithub for GitHub's REST API, and
a generic GraphQL client (gql over httpx) running the platforms' reference queries. If they work, the
sandbox speaks the platforms' contracts, not just what our connectors happen to send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import graphql
import pytest
from github import Auth, Github
from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport

from sophia_mcp.sandbox import running_sandbox
from sophia_mcp.sandbox.github import TOKEN
from sophia_mcp.sandbox.graphql import load_schema
from sophia_mcp.sandbox.linear import API_KEY

pytestmark = pytest.mark.anyio


def operations(path: Path) -> dict[str, str]:
    """Each named operation of a reference query file, as its own document."""
    document = graphql.parse(path.read_text())
    return {
        op.name.value: graphql.print_ast(op)
        for op in document.definitions
        if isinstance(op, graphql.OperationDefinitionNode) and op.name
    }


async def test_pygithub_lists_the_orgs_repositories_issues_and_pull_requests() -> None:
    def use_pygithub(base: str) -> dict[str, Any]:
        client = Github(base_url=f"{base}/github", auth=Auth.Token(TOKEN), per_page=5)
        try:
            repos = list(client.get_organization("northwind").get_repos())
            repo = next(r for r in repos if r.name == "customer-portal")
            issues = list(repo.get_issues(state="all"))
            pulls = list(repo.get_pulls(state="all"))
            return {
                "repos": [r.full_name for r in repos],
                "private": {r.name: r.private for r in repos},
                "issues": [(i.number, i.state, i.pull_request is not None) for i in issues],
                "pulls": [(p.number, p.head.ref, p.base.ref, p.merged_at is not None) for p in pulls],
                "owner": repo.owner.login,
            }
        finally:
            client.close()

    async with running_sandbox() as (base, state):
        seen = await anyio.to_thread.run_sync(use_pygithub, base)
        assert state.calls["github"] >= 3 + 2  # pages of 5 for 14 repositories, then issues and pulls

    assert len(seen["repos"]) == len(set(seen["repos"])) == 14
    assert seen["owner"] == "northwind" and seen["private"]["design-system"] is False
    assert len(seen["issues"]) == 8  # PyGithub follows the Link headers past the first page of 5
    pull_numbers = {number for number, _, is_pull in seen["issues"] if is_pull}
    assert pull_numbers == {number for number, *_ in seen["pulls"]}
    assert all(base_ref == "main" and head.startswith("por-") for _, head, base_ref, _ in seen["pulls"])


async def test_gql_runs_the_reference_queries_of_linear_and_github(specs_dir: Path) -> None:
    linear_queries = operations(specs_dir / "linear" / "queries.graphql")
    github_queries = operations(specs_dir / "github" / "graphql" / "queries.graphql")
    # the client validates each query before sending it; the packaged schemas are byte-for-byte the published
    # ones (tests/test_linear.py, tests/test_github.py), and building each only once keeps this test fast
    linear_schema, github_schema = load_schema("linear"), load_schema("github")
    async with running_sandbox() as (base, _):
        linear = HTTPXAsyncTransport(url=f"{base}/linear/graphql", headers={"Authorization": API_KEY})
        async with Client(transport=linear, schema=linear_schema) as session:
            variables = {"SearchIssues": {"term": "telemetry"}, "SearchProjects": {"term": "fleet"}}
            results = {
                name: await session.execute(gql(query), variable_values=variables.get(name, {}))
                for name, query in linear_queries.items()
            }
        assert set(results) == {"Teams", "Projects", "Issues", "SearchIssues", "SearchProjects"}
        assert len(results["Projects"]["projects"]["nodes"]) == 14
        assert results["SearchIssues"]["searchIssues"]["totalCount"] > 0

        github = HTTPXAsyncTransport(url=f"{base}/github/graphql", headers={"Authorization": f"bearer {TOKEN}"})
        async with Client(transport=github, schema=github_schema) as session:
            projects = await session.execute(
                gql(github_queries["OrgProjectsV2"]), variable_values={"org": "northwind", "first": 20}
            )
            first = projects["organization"]["projectsV2"]["nodes"][0]
            items = await session.execute(
                gql(github_queries["ProjectV2Items"]), variable_values={"projectId": first["id"]}
            )
    assert projects["organization"]["projectsV2"]["totalCount"] == 14
    assert projects["rateLimit"]["remaining"] == 4999
    nodes = items["node"]["items"]["nodes"]
    assert nodes and all(n["fieldValues"]["nodes"] for n in nodes)
    assert {n["type"] for n in nodes} <= {"ISSUE", "PULL_REQUEST", "DRAFT_ISSUE"}
