"""The auditor's report moved to ``pipelines.audit.report``. This name stays importable for the CLI
(``audit_cli``, being moved to ``pipelines/cli/``) and the tests until they import the new one; then
it goes."""

from pipelines.audit.report import REPORT_NAME, render_report, report_path, retention_chart, write_report

__all__ = ["REPORT_NAME", "render_report", "report_path", "retention_chart", "write_report"]
