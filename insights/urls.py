from django.urls import path

from insights import views

app_name = "insights"

urlpatterns = [
    path("analytics/", views.analytics, name="analytics"),
    path("analytics/pulls.csv", views.analytics_csv, name="analytics-csv"),
]
