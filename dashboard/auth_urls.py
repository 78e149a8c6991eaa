from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard.views import auth

urlpatterns = [
    path("login/", auth.sign_in, name="login"),
    path("login/code/", auth.two_factor, name="two-factor"),
    path("login/set-up-two-factor/", auth.two_factor_setup, name="two-factor-setup"),
    path("logout/", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
]
