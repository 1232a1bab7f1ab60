"""The review web app (``probegen review serve``): Starlette, Jinja2, a little JavaScript."""

from probegen.review.web.app import ReviewSettings, create_app
from probegen.review.web.security import allowed_hosts, check_bind

__all__ = ["ReviewSettings", "allowed_hosts", "check_bind", "create_app"]
