"""The one route table; every route is named so handlers and templates can build URLs."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from web import (
    admin_api,
    admin_pages,
    api,
    exports,
    key_pages,
    limit_pages,
    metrics,
    pages,
    statement_pages,
    usage_pages,
)


def setup_routes(app: web.Application, static_dir: Path) -> None:
    router = app.router
    router.add_get("/", pages.index, name="index")
    router.add_get("/register", pages.register_page, name="register")
    router.add_post("/register", pages.register_submit)
    router.add_get("/login", pages.login_page, name="login")
    router.add_post("/login", pages.login_submit)
    router.add_post("/logout", pages.logout, name="logout")
    router.add_get("/cabinet", pages.cabinet, name="cabinet")
    router.add_post("/cabinet/top-up", pages.top_up, name="cabinet_top_up")
    router.add_post("/cabinet/predict", pages.predict, name="cabinet_predict")
    router.add_get("/cabinet/tasks/{task_id}", pages.task, name="cabinet_task")
    router.add_get("/docs", pages.docs, name="docs")
    # url('static', filename=...) adds ?v=<content hash>: cached for a year, never stale.
    router.add_static("/static", static_dir, name="static", append_version=True)

    router.add_get("/healthz", api.health, name="health")
    router.add_get("/api/openapi.json", api.openapi, name="openapi")
    v1 = "/api/v1"
    router.add_post(f"{v1}/auth/register", api.register, name="api_register")
    router.add_post(f"{v1}/auth/login", api.login, name="api_login")
    router.add_post(f"{v1}/auth/logout", api.logout, name="api_logout")
    router.add_get(f"{v1}/me", api.me, name="api_me")
    router.add_get(f"{v1}/balance", api.balance, name="api_balance")
    router.add_post(f"{v1}/balance/top-up", api.top_up, name="api_top_up")
    router.add_get(f"{v1}/transactions", api.transactions, name="api_transactions")
    router.add_get(f"{v1}/models", api.models, name="api_models")
    router.add_post(f"{v1}/predict", api.predict, name="api_predict")
    router.add_get(f"{v1}/tasks", api.tasks, name="api_tasks")
    # Before tasks/{task_id}, which would otherwise take "export" for a task id.
    router.add_get(f"{v1}/tasks/export", exports.tasks_export, name="api_tasks_export")
    router.add_get(f"{v1}/tasks/{{task_id}}", api.task, name="api_task")
    router.add_get(f"{v1}/ledger/public-key", api.public_key, name="api_public_key")
    router.add_get(f"{v1}/ledger/checkpoints/latest", api.latest_checkpoint,
                   name="api_latest_checkpoint")
    router.add_get(f"{v1}/ledger/checkpoints/consistency", api.checkpoint_consistency,
                   name="api_checkpoint_consistency")
    router.add_get(f"{v1}/statement/proof", api.statement_proof, name="api_statement_proof")
    router.add_get("/cabinet/statement", pages.statement, name="cabinet_statement")
    router.add_post(f"{v1}/keys", api.create_key, name="api_create_key")
    router.add_get(f"{v1}/keys", api.list_keys, name="api_keys")
    router.add_delete(f"{v1}/keys/{{key_id}}", api.revoke_key, name="api_revoke_key")
    router.add_post(f"{v1}/auth/password", api.change_password, name="api_change_password")
    router.add_post(f"{v1}/auth/logout-all", api.logout_all, name="api_logout_all")
    router.add_get(f"{v1}/security-events", api.security_events, name="api_security_events")
    router.add_get("/cabinet/keys", key_pages.keys_page, name="cabinet_keys")
    router.add_post("/cabinet/keys", key_pages.create_key, name="cabinet_create_key")
    router.add_get("/cabinet/keys/{key_id}/revoke", key_pages.revoke_confirm,
                   name="cabinet_revoke_key")
    router.add_post("/cabinet/keys/{key_id}/revoke", key_pages.revoke_key)
    router.add_post("/cabinet/password", key_pages.change_password, name="cabinet_password")
    router.add_post("/cabinet/logout-all", key_pages.logout_all, name="cabinet_logout_all")
    router.add_get("/cabinet/limits", limit_pages.limits_page, name="cabinet_limits")
    router.add_post("/cabinet/limits", limit_pages.set_limits)
    router.add_post("/cabinet/time-zone", limit_pages.set_time_zone, name="cabinet_time_zone")
    router.add_put(f"{v1}/me", api.update_me, name="api_update_me")
    router.add_get(f"{v1}/limits", api.get_limits, name="api_limits")
    router.add_put(f"{v1}/limits", api.put_limits, name="api_put_limits")
    # Exports and statements (issue 10, branch exports): web/exports.py, web/statement_pages.py
    router.add_get(f"{v1}/transactions/export", exports.transactions_export,
                   name="api_transactions_export")
    router.add_get(f"{v1}/statement", exports.statement, name="api_statement")
    router.add_get("/cabinet/statement/print", statement_pages.statement_page,
                   name="cabinet_statement_print")

    # The operator console (issue 13): the API answers 403 to non-operators, the pages 404.
    admin = f"{v1}/admin"
    router.add_get(f"{admin}/users", admin_api.users, name="api_admin_users")
    router.add_get(f"{admin}/users/{{user_id}}", admin_api.user, name="api_admin_user")
    router.add_post(f"{admin}/users/{{user_id}}/adjustments", admin_api.adjust,
                    name="api_admin_adjust")
    router.add_post(f"{admin}/users/{{user_id}}/suspend", admin_api.suspend,
                    name="api_admin_suspend")
    router.add_post(f"{admin}/users/{{user_id}}/resume", admin_api.resume,
                    name="api_admin_resume")
    router.add_get(f"{admin}/ledger", admin_api.ledger, name="api_admin_ledger")
    router.add_get(f"{admin}/actions", admin_api.actions, name="api_admin_actions")
    router.add_get("/admin", admin_pages.users_page, name="admin_users")
    router.add_get("/admin/users/{user_id}", admin_pages.user_page, name="admin_user")
    router.add_post("/admin/users/{user_id}/adjustments", admin_pages.adjust,
                    name="admin_adjust")
    router.add_post("/admin/users/{user_id}/suspend", admin_pages.suspend,
                    name="admin_suspend")
    router.add_post("/admin/users/{user_id}/resume", admin_pages.resume, name="admin_resume")
    router.add_get("/admin/ledger", admin_pages.ledger_page, name="admin_ledger")
    router.add_get("/admin/actions", admin_pages.actions_page, name="admin_actions")
    router.add_get("/readyz", metrics.ready, name="ready")
    router.add_get("/metrics", metrics.metrics_page, name="metrics")
    router.add_get(f"{v1}/usage", usage_pages.usage, name="api_usage")
    router.add_get("/cabinet/usage", usage_pages.usage_page, name="cabinet_usage")
