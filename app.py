"""Switchyard: the control room for migrating a fleet of RPC systems to a port-based architecture.

Run with ``streamlit run app.py``. This file only builds navigation and the
sidebar; every page lives in ``pages/`` and every decision in ``engine``.
"""

import streamlit as st

from engine import access, services
from pages._governance import hold_banners
from pages._shared import NOT_LOGGED_IN, actor, can_act, identity_provider, visitor_address, workspace

st.set_page_config(page_title="Switchyard", page_icon=":material/alt_route:", layout="wide")

ws = workspace()

pages = {
    "Today": [
        st.Page("pages/standup.py", title="Standup", icon=":material/groups:", default=True),
        st.Page("pages/go_no_go.py", title="Go / No-Go", icon=":material/fact_check:"),
    ],
    "Migrate": [
        st.Page("pages/inventory.py", title="Inventory", icon=":material/inventory_2:"),
        st.Page("pages/conversion.py", title="Conversion", icon=":material/swap_horiz:"),
        st.Page("pages/validation.py", title="Validation", icon=":material/verified:"),
    ],
    "Plan and review": [
        st.Page("pages/timeline.py", title="Timeline", icon=":material/timeline:"),
        st.Page("pages/risks.py", title="Risks", icon=":material/warning:"),
        st.Page("pages/report.py", title="Post-mortem", icon=":material/description:"),
        st.Page("pages/audit.py", title="Audit log", icon=":material/history:"),
    ],
}
nav = st.navigation(pages)

# one store connection for the whole render: sidebar, hold banners and the page (a dozen service
# calls each opened the DuckDB file before; engine.store.db.one_connection)
with services.one_connection(ws):
    with st.sidebar:
        st.markdown("### :material/alt_route: Switchyard")
        st.caption(f"Workspace: `{ws.root}`")
        fleet = services.fleet_summary(ws)
        st.metric("Systems in fleet", fleet["total"])
        st.caption(" · ".join(f"{state}: {n}" for state, n in fleet["by_state"].items()))
        who, (allowed, why) = actor(), can_act()
        st.caption(
            f"Signed in as **{who}** · {'operator' if allowed else 'viewer'}",
            help=why or "Recorded on every action you take.",
        )
        if not identity_provider() and access.is_anonymous(who):  # from another machine, no login: say why
            st.warning(
                f"You reach this app from another machine ({visitor_address()}) and it has no identity "
                "provider: you can look, not act.",
                icon=":material/public:",
            )
        if identity_provider() and who == NOT_LOGGED_IN:
            st.button("Log in", icon=":material/login:", on_click=st.login)
        elif identity_provider():
            st.button("Log out", icon=":material/logout:", on_click=st.logout)

    hold_banners(ws)  # a hold, its owner and reason are shown on every page
    nav.run()
