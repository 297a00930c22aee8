from services.links.app import create_app
from services.links.gateway.api import Gateway
from services.links.settings import LinksSettings
from shared.service import serve

settings = LinksSettings()
app = create_app(settings)
# uvicorn calls the raw-ASGI gateway first: a redirect never enters FastAPI at all. In the
# insights role no redirector is ever installed, so every request goes to FastAPI.
serve(Gateway(app, app.state.slot), settings)
