from services.links.app import create_app
from services.links.redirect import Gateway
from services.links.settings import LinksSettings
from shared.service import serve

settings = LinksSettings()
app = create_app(settings)
# uvicorn calls the raw-ASGI gateway first: a redirect never enters FastAPI at all.
serve(Gateway(app, app.state.slot), settings)
