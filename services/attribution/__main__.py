from services.attribution.app import create_app
from services.attribution.settings import AttributionSettings
from shared.service import serve

settings = AttributionSettings()
serve(create_app(settings), settings)
