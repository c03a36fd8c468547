"""Name and place word lists for the synthetic Farajaland population (invented, Zambia-like)."""

from __future__ import annotations

# fmt: off
FEMALE_GIVEN = (
    "Chanda", "Mwila", "Bwalya", "Mutale", "Chileshe", "Musonda", "Thandiwe", "Naledi", "Mapalo",
    "Natasha", "Chipo", "Tamara", "Luyando", "Mwaka", "Nchimunya", "Mulenga", "Kasuba", "Inonge",
    "Mutinta", "Choolwe", "Taonga", "Namakau", "Lubona", "Mirriam", "Agness", "Precious", "Memory",
    "Ruth", "Esther", "Grace", "Mercy", "Beatrice", "Florence", "Gift", "Joyce", "Loveness",
    "Sophia", "Isadore", "Prisca", "Chisomo", "Nkandu", "Misozi", "Wezi", "Kondwani", "Mwansa",
    "Salifyanji", "Mainza", "Hope",
)
MALE_GIVEN = (
    "Kabwe", "Lubinda", "Mwansa", "Chilufya", "Mumba", "Kondwani", "Bupe", "Chishimba", "Mutinta",
    "Lungowe", "Mubanga", "Kalaba", "Chinyama", "Simunza", "Hachilala", "Moonga", "Luka",
    "Dalitso", "Joseph", "Emmanuel", "Patrick", "Brian", "Clement", "Given", "Kelvin", "Moses",
    "Peter", "Frank", "Neil", "Zack", "Gabriel", "Isaac", "Jacob", "Mwape", "Kasonde", "Chola",
    "Nyambe", "Mukuka", "Lweendo", "Chimuka", "Sipho", "Temwani", "Mapenzi", "Kunda", "Mwiinga",
    "Hamusonde", "Njamba", "Pumulo",
)
SURNAMES = (
    "Banda", "Phiri", "Mwale", "Tembo", "Zulu", "Lungu", "Mulenga", "Chanda", "Mwanza", "Sakala",
    "Daka", "Ngoma", "Mbewe", "Kabwe", "Musonda", "Bwalya", "Chilufya", "Kapembwa", "Simwanza",
    "Hamoonga", "Mweemba", "Hachinene", "Mumba", "Nyirenda", "Kasonde", "Mutale", "Chisanga",
    "Siame", "Sichone", "Mukuka", "Lubinda", "Mubita", "Liswaniso", "Nalumango", "Hakainde",
    "Munkombwe", "Siachisa", "Moonde", "Chibuye", "Kaunda", "Mpundu", "Chikwanda", "Ng'andu",
    "Shawa", "Kalunga", "Soko", "Baumbach", "Pacocha", "Chiluba", "Mwamba", "Katongo", "Chipimo",
    "Habeenzu", "Imasiku",
)
TOWNS = (
    "Ibombo", "Isamba", "Itambo", "Ezhi", "Ilanga", "Irundu", "Zobwe", "Afue", "Embe", "Ienge",
    "Funabuli", "Pili", "Ama", "Nsali", "Soka", "Chibiya", "Chikobo", "Keembe", "Golden Valley",
    "Mwachisompola", "Chamakubi", "Kabangalala", "Mumbwa Road",
)
STREETS = (
    "Independence Avenue", "Cairo Road", "Freedom Way", "Church Road", "Market Street",
    "Mission Road", "Lake View", "Hospital Road", "School Lane", "Kalundu Road", "Makeni Road",
    "Chilimbulu Road", "Great East Road", "Matero Street", "Chelston Drive",
)
OCCUPATIONS = (
    "Farmer", "Teacher", "Nurse", "Trader", "Driver", "Bookkeeper", "Carpenter", "Miner", "Tailor",
    "Mechanic", "Fisher", "Clerk", "Electrician", "Civil servant", "Student",
)
# fmt: on
