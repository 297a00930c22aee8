from services.rewards.app import create_app
from services.rewards.settings import RewardsSettings
from shared.service import serve

settings = RewardsSettings()
serve(create_app(settings), settings)
