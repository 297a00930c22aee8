from services.links.app import create_app
from services.links.settings import LinksSettings
from shared.service import serve

settings = LinksSettings()
serve(create_app(settings), settings)
