"""The web map at /map: a Folium page whose data is fetched live from the API and the tiles."""
